//! The API edge's errors: each domain error becomes its canonical status
//! here, and only here. A storage or sealing failure is logged with an
//! error id and sent without its cause (`status::storage`, `status::logged`).

use crate::authority::AuthorityError;
use crate::ca::CaError;
use crate::database::DatabaseError;
use crate::leases::LeaseError;
use crate::secrets::SecretError;
use paved_grpc::{auth, status};
use tonic::Status;

impl From<CaError> for Status {
    fn from(e: CaError) -> Self {
        match e {
            CaError::Csr(why) => {
                status::invalid_argument("INVALID_CSR", "invalid certificate signing request", [("csr_pem".to_string(), why)])
            }
            CaError::Database(e) => status::storage(&e),
            e @ CaError::NotEnrolled => status::unauthenticated("CERTIFICATE_NOT_ENROLLED", e.to_string()),
            e @ CaError::Replaced(_) => status::unauthenticated("CERTIFICATE_REPLACED", e.to_string()),
            e @ CaError::EnrolmentRevoked(..) => status::unauthenticated("ENROLMENT_REVOKED", e.to_string()),
            e @ CaError::EnrolmentOver(_) => status::unauthenticated("ENROLMENT_EXPIRED", e.to_string()),
            e @ (CaError::Sealed(..) | CaError::Sign(_)) => status::internal(&e),
        }
    }
}

impl From<DatabaseError> for Status {
    fn from(e: DatabaseError) -> Self {
        match e {
            DatabaseError::NotFound(name) => status::not_found("DATABASE_NOT_FOUND", format!("no database {name} is configured")),
            // The configured server's own words name its host: logged, as
            // for our storage, so that a workload asking for credentials
            // learns nothing of where they lead.
            e @ DatabaseError::Target(_) => status::logged(
                tonic::Code::Unavailable,
                "DATABASE_TARGET",
                "the configured database's server cannot be reached or refused a statement; retry",
                &e,
            ),
            DatabaseError::Invalid(why) => status::failed_precondition("DATABASE_INVALID", why),
            DatabaseError::Store(e) => status::storage(&e),
            e @ DatabaseError::Sealed(..) => {
                status::logged(tonic::Code::DataLoss, "SEALED_VALUE", "a sealed connection URL does not open", &e)
            }
        }
    }
}

impl From<LeaseError> for Status {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::NotFound(id) => status::not_found("LEASE_NOT_FOUND", format!("lease {id} not found")),
            LeaseError::Revoked(id) => status::failed_precondition("LEASE_REVOKED", format!("lease {id} is revoked or expired")),
            LeaseError::TokenRevoked(_) => caller_revoked(),
            LeaseError::Database(e) => e.into(),
        }
    }
}

impl From<SecretError> for Status {
    fn from(e: SecretError) -> Self {
        match e {
            SecretError::NotFound(path) => status::not_found("SECRET_NOT_FOUND", format!("no secret {path}")),
            e @ SecretError::Expired(..) => status::failed_precondition("SECRET_VERSION_EXPIRED", e.to_string()),
            SecretError::Database(e) => status::storage(&e),
            // Tampered ciphertext, or a root key missing: logged, and said
            // without detail (never the value).
            e @ SecretError::Sealed(..) => status::logged(tonic::Code::DataLoss, "SEALED_VALUE", "a sealed secret does not open", &e),
        }
    }
}

impl From<AuthorityError> for Status {
    fn from(e: AuthorityError) -> Self {
        match e {
            AuthorityError::NotFound(id) => status::not_found("TOKEN_NOT_FOUND", format!("token {id} not found")),
            AuthorityError::Revoked(id) => status::failed_precondition("TOKEN_REVOKED", format!("token {id} is revoked")),
            AuthorityError::NotRenewable(id) => {
                status::failed_precondition("TOKEN_NOT_RENEWABLE", format!("token {id} is past its renewable_until; ask for a new one"))
            }
            AuthorityError::Database(e) => status::storage(&e),
            e @ AuthorityError::Sealed(..) => status::internal(&e),
        }
    }
}

/// The caller's token was revoked before verifiers knew (a request already
/// past the auth layer): what they answer once they do.
pub(super) fn caller_revoked() -> Status {
    auth::token_refused(&paved_token::TokenError::Revoked)
}
