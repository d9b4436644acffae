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

/// PERMISSION_DENIED whose `ErrorInfo` metadata says what was lacking
/// (`scope`, `audience`), for programs to act on.
pub fn permission_denied_for(reason: &str, message: impl Into<String>, metadata: &[(&str, &str)]) -> Status {
    let mut details = ErrorDetails::new();
    let metadata: HashMap<String, String> = metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    details.set_error_info(reason, DOMAIN, metadata);
    Status::with_error_details(Code::PermissionDenied, message, details)
}

/// OUT_OF_RANGE: a position past the end of what there is (AIP-193), with
/// the field that asked for it and, in `ErrorInfo` metadata, what there is
/// (`size`) for programs to act on.
pub fn out_of_range(reason: &str, message: impl Into<String>, field: &str, metadata: &[(&str, &str)]) -> Status {
    let message = message.into();
    let mut details = ErrorDetails::with_bad_request(vec![FieldViolation::new(field, message.clone())]);
    details.set_error_info(reason, DOMAIN, metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>());
    Status::with_error_details(Code::OutOfRange, message, details)
}

pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::FailedPrecondition, reason, message, ErrorDetails::new())
}

/// Stored data that cannot be read back as written (a sealed value that
/// does not open): the message says what, never the value.
pub fn data_loss(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::DataLoss, reason, message, ErrorDetails::new())
}

/// A dependency (database, stream) is unreachable; the client may retry.
/// `message` is the service's own words: never a cause's text (use
/// [`storage`] for a cause).
pub fn unavailable(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::Unavailable, reason, message, ErrorDetails::new())
}

/// The `ErrorInfo` metadata key of the id an internal cause was logged under.
pub const ERROR_ID: &str = "error_id";

/// The service's own storage failed (a database error of any kind): the
/// cause is logged with a short error id, and the client gets UNAVAILABLE
/// (it may retry) with reason `STORAGE_UNAVAILABLE` and the id, never the
/// cause: driver text names tables, hosts and paths.
pub fn storage(cause: &dyn std::fmt::Display) -> Status {
    logged(Code::Unavailable, "STORAGE_UNAVAILABLE", "the service's storage is unavailable; retry", cause)
}

/// An unexpected failure. The cause is logged here, where it is handled,
/// with a short error id; the client gets INTERNAL with that id, never the
/// cause, which could leak internals.
pub fn internal(cause: &dyn std::fmt::Display) -> Status {
    logged(Code::Internal, "INTERNAL", "internal error", cause)
}

/// A fresh short id to log a cause under, and to give where the cause may
/// not go (an answer, a record a client reads): 12 hex digits.
pub fn error_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}

/// `code` with `reason` and `message`, the cause logged under a fresh error
/// id that the answer carries (in its message, for people, and in
/// `ErrorInfo` metadata under [`ERROR_ID`], for programs).
pub fn logged(code: Code, reason: &str, message: &str, cause: &dyn std::fmt::Display) -> Status {
    let id = error_id();
    tracing::error!(error_id = %id, error = %cause, reason, "{message}");
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, DOMAIN, HashMap::from([(ERROR_ID.to_string(), id.clone())]));
    Status::with_error_details(code, format!("{message} (error id {id})"), details)
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
    fn a_logged_cause_is_not_sent() {
        let cause = "error returned from database: relation \"secrets\" does not exist at 10.0.0.7:5432";
        let status = storage(&cause);
        assert_eq!(status.code(), Code::Unavailable);
        let details = status.get_error_details();
        let info = details.error_info().expect("error info");
        assert_eq!(info.reason, "STORAGE_UNAVAILABLE");
        let id = info.metadata.get(ERROR_ID).expect("error id");
        assert_eq!(id.len(), 12);
        assert!(status.message().contains(id.as_str()), "{}", status.message());
        for leak in ["relation", "secrets", "10.0.0.7", "database:"] {
            assert!(!status.message().contains(leak), "{leak} in {}", status.message());
        }
        let other = internal(&cause);
        assert_eq!(other.code(), Code::Internal);
        assert_ne!(other.get_error_details().error_info().expect("info").metadata.get(ERROR_ID), Some(id), "a fresh id each time");
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
