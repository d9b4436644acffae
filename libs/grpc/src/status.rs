//! Canonical gRPC errors with `google.rpc` rich details (AIP-193): every error
//! carries an `ErrorInfo` with a machine-readable reason, and INVALID_ARGUMENT
//! carries `BadRequest` field violations.

use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

pub const DOMAIN: &str = "paved.dev";

fn with_reason(code: Code, reason: &str, message: impl Into<String>, mut details: ErrorDetails) -> Status {
    details.set_error_info(reason, DOMAIN, HashMap::<String, String>::new());
    Status::with_error_details(code, message, details)
}

/// INVALID_ARGUMENT with one violation per `(field, description)`.
pub fn invalid_argument(reason: &str, message: impl Into<String>, violations: impl IntoIterator<Item = (String, String)>) -> Status {
    let violations: Vec<FieldViolation> =
        violations.into_iter().map(|(field, description)| FieldViolation::new(field, description)).collect();
    with_reason(Code::InvalidArgument, reason, message, ErrorDetails::with_bad_request(violations))
}

pub fn not_found(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::NotFound, reason, message, ErrorDetails::new())
}

/// A credential that is missing, unknown, expired or spent.
pub fn unauthenticated(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::Unauthenticated, reason, message, ErrorDetails::new())
}

pub fn permission_denied(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::PermissionDenied, reason, message, ErrorDetails::new())
}

pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::FailedPrecondition, reason, message, ErrorDetails::new())
}

/// A dependency (database, stream) is unreachable; the client may retry.
pub fn unavailable(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::Unavailable, reason, message, ErrorDetails::new())
}

/// An unexpected failure. The cause is logged here, where it is handled, and
/// not sent to the client, which could leak internals.
pub fn internal(error: &dyn std::fmt::Display) -> Status {
    tracing::error!(error = %error, "internal error");
    with_reason(Code::Internal, "INTERNAL", "internal error", ErrorDetails::new())
}

/// Decodes a `page_token` (an opaque offset) and clamps `page_size`.
pub fn page(page_size: i32, page_token: &str) -> Result<(u64, u64), Status> {
    let size = match page_size {
        n if n < 0 => {
            return Err(invalid_argument(
                "INVALID_PAGE_SIZE",
                "page_size must not be negative",
                [("page_size".into(), "must be ≥ 0".into())],
            ));
        }
        0 => 100,
        n => (n as u64).min(1000),
    };
    let offset = if page_token.is_empty() {
        0
    } else {
        // Offsets are bound as signed 64-bit integers by the database layer.
        page_token.parse::<u64>().ok().filter(|offset| i64::try_from(*offset).is_ok()).ok_or(()).map_err(|()| {
            invalid_argument(
                "INVALID_PAGE_TOKEN",
                "page_token is not one this server issued",
                [("page_token".into(), "unrecognised".into())],
            )
        })?
    };
    Ok((size, offset))
}

/// The token for the page after `offset` when `returned` items filled the page.
pub fn next_page_token(offset: u64, size: u64, returned: usize) -> String {
    if returned as u64 == size { (offset + size).to_string() } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status = invalid_argument("BAD", "bad spec", [("spec.port".to_string(), "must be 1-65535".to_string())]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let bad = details.bad_request().expect("bad request details");
        assert_eq!(bad.field_violations[0].field, "spec.port");
        assert_eq!(details.error_info().expect("error info").reason, "BAD");
    }

    #[test]
    fn pages() {
        assert_eq!(page(0, "").ok(), Some((100, 0)));
        assert_eq!(page(5000, "200").ok(), Some((1000, 200)));
        assert_eq!(page(-1, "").err().map(|s| s.code()), Some(Code::InvalidArgument));
        assert_eq!(page(10, "x").err().map(|s| s.code()), Some(Code::InvalidArgument));
        assert_eq!(page(10, "18446744073709551615").err().map(|s| s.code()), Some(Code::InvalidArgument));
        assert_eq!(next_page_token(0, 10, 10), "10");
        assert_eq!(next_page_token(0, 10, 3), "");
    }
}
