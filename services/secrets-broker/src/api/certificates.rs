//! Certificates at the edge: `IssueCertificate` (`certs:issue:<path>`, or an
//! enrolment for good by a platform identity's own token),
//! `RenewCertificate` and `ExchangeCertificate` (open: the mTLS client
//! certificate is the credential), `GetTrustBundle` (open),
//! `RotateCertificateAuthority`.

use super::access::{for_broker, needs};
use super::fields::duration;
use crate::authority::{Authority, AuthorityError, Grant};
use crate::ca::{self, Ca, CaError, CertificateAuthority, ENROL_SCOPE};
use crate::clock::{ms, now_ms};
use crate::recorder::Recorder;
use crate::tokens;
use paved_grpc::{auth, status};
use paved_proto::secrets_broker::v1::{
    self as pb, ExchangeCertificateRequest, ExchangeCertificateResponse, GetTrustBundleRequest, GetTrustBundleResponse,
    IssueCertificateRequest, IssueCertificateResponse, RenewCertificateRequest, RenewCertificateResponse,
    RotateCertificateAuthorityRequest, RotateCertificateAuthorityResponse,
};
use paved_proto::timestamp_from_millis;
use std::time::Duration;
use tonic::{Request, Response, Status};

pub(super) struct CertificatesApi {
    pub ca: Ca,
    pub authority: Authority,
    pub recorder: Recorder,
}

impl From<CertificateAuthority> for pb::CertificateAuthority {
    fn from(ca: CertificateAuthority) -> Self {
        pb::CertificateAuthority {
            id: ca.id,
            create_time: Some(timestamp_from_millis(ca.create_time_ms)),
            expire_time: Some(timestamp_from_millis(ca.expire_time_ms)),
            retire_time: ca.retire_time_ms.map(timestamp_from_millis),
        }
    }
}

/// What a certificate's login may do: the enrolling token's scopes but any
/// that would get certificates (`certs:…`, `*`), so that a login cannot
/// start a line of its own beside the one it came from.
fn login_scopes(enrolling: Vec<String>) -> Vec<String> {
    const CERTS: &str = "certs:";
    enrolling.into_iter().filter(|s| !s.starts_with(CERTS) && s.strip_suffix('*').is_none_or(|prefix| !CERTS.starts_with(prefix))).collect()
}

/// The client certificate of a call over mTLS, verified to the trust
/// bundle in the handshake; UNAUTHENTICATED without one (not recorded:
/// anyone may call so, and such calls must not fill the audit trail).
fn presented<T>(request: &Request<T>) -> Result<tonic::transport::CertificateDer<'static>, Status> {
    request.peer_certs().and_then(|certs| certs.first().cloned()).ok_or_else(|| {
        status::unauthenticated(
            "PEER_CERTIFICATE_REQUIRED",
            "this call's credential is a client certificate: call over mTLS presenting it (or enrol with a token: IssueCertificate)",
        )
    })
}

/// A certificate request's CSR and ttl checked, with `violations` found
/// before: the ttl (default [`ca::DEFAULT_TTL`], at most `max`) or
/// INVALID_ARGUMENT.
fn certificate_request(
    csr_pem: &str,
    ttl: Option<&prost_types::Duration>,
    max: Duration,
    mut violations: Vec<(String, String)>,
) -> Result<Duration, Status> {
    if csr_pem.trim().is_empty() {
        violations.push(("csr_pem".to_string(), "a PKCS#10 request (PEM) signed by the certificate's key".to_string()));
    }
    let ttl = duration(ttl, "ttl", ca::DEFAULT_TTL, max).map_err(|v| violations.push(v)).ok();
    match ttl {
        Some(ttl) if violations.is_empty() => Ok(ttl),
        _ => Err(status::invalid_argument("INVALID_CERTIFICATE_REQUEST", "invalid certificate request", violations)),
    }
}

impl CertificatesApi {
    /// The answer for a certificate just issued, with the bundle to trust.
    async fn certificate(&self, issued: ca::Issued) -> Result<IssueCertificateResponse, Status> {
        let trust_bundle_pem = self.ca.bundle().await?.pem;
        Ok(IssueCertificateResponse {
            certificate_pem: issued.certificate_pem,
            spiffe_id: issued.spiffe_id,
            expire_time: Some(timestamp_from_millis(issued.expire_time_ms)),
            authority_id: issued.authority_id,
            trust_bundle_pem,
        })
    }

    /// Records why a client certificate was refused as a credential (a
    /// `certificate.denied` event); the answer.
    async fn refused(&self, presented: &tonic::transport::CertificateDer<'static>, e: CaError) -> Status {
        if matches!(e, CaError::NotEnrolled | CaError::Replaced(_) | CaError::EnrolmentRevoked(..) | CaError::EnrolmentOver(_)) {
            let presented_id = paved_grpc::tls::spiffe_id(presented).unwrap_or_default();
            self.recorder.record("certificate.denied", &presented_id, &presented_id, &e.to_string()).await;
        }
        e.into()
    }

    pub(super) async fn issue(&self, request: Request<IssueCertificateRequest>) -> Result<Response<IssueCertificateResponse>, Status> {
        let caller = auth::caller(&request)?;
        for_broker(&caller)?;
        let req = request.into_inner();
        let spiffe_id = if req.spiffe_id.is_empty() { caller.sub.clone() } else { req.spiffe_id.clone() };
        let mut violations = Vec::new();
        if !ca::valid_spiffe_id(&spiffe_id) {
            let why = if req.spiffe_id.is_empty() {
                format!("the caller {} is no SPIFFE identity: name one (spiffe://paved/<env>/<workload>)", caller.sub)
            } else {
                "spiffe://paved/<env>/<workload>: lowercase names".to_string()
            };
            violations.push(("spiffe_id".to_string(), why));
        }
        let ttl = certificate_request(&req.csr_pem, req.ttl.as_ref(), ca::MAX_TTL, violations)?;
        // Always a scope, even for the caller's own subject: a token with
        // `write:secrets-broker` can name any subject for the tokens it
        // issues, and a certificate is an identity peers trust by name.
        let path = spiffe_id.strip_prefix(paved_grpc::tls::TRUST_DOMAIN).unwrap_or_default().trim_start_matches('/');
        // Enrolled for good: a platform identity, by a token of its own
        // that names `certs:enrol:platform/<service>` itself. A wildcard in
        // the enrolling token does not count, and only a token allowed that
        // scope (the root's `*`, say) can issue one naming it: holders of
        // `certs:issue:platform/*` make no line that outlives their token.
        let enrols = format!("{ENROL_SCOPE}{path}");
        let for_good = spiffe_id.starts_with(paved_grpc::tls::PLATFORM_PREFIX) && caller.sub == spiffe_id && caller.scp.contains(&enrols);
        if !for_good {
            needs(&self.recorder, &caller, &format!("certs:issue:{path}"), &spiffe_id, "certificate.denied").await?;
        }
        // Never outliving the token that asked (certificates are not
        // revoked, tokens are); its renewals end once that token is revoked.
        let token_left = Duration::from_secs(u64::try_from(caller.exp - chrono::Utc::now().timestamp()).unwrap_or(0));
        let ttl = ttl.min(token_left);
        if ttl.is_zero() {
            return Err(status::failed_precondition("TOKEN_EXPIRING", "the token expires now: renew it, then ask for a certificate"));
        }
        // Enrolled for good, it renews for as long as that token stands
        // (revoking it or the identity ends it); any other certificate no
        // longer than the token could, and at most a day.
        let until = if caller.ren > 0 { caller.ren } else { caller.exp }.saturating_mul(1000);
        let until = until.min(now_ms().saturating_add(ms(ca::MAX_TTL)));
        let enrolment = ca::Enrolment { token: caller.jti.clone(), renew_until_ms: (!for_good).then_some(until) };
        let issued = self.ca.issue(&caller.sub, &spiffe_id, &req.csr_pem, ttl, Some(&enrolment)).await?;
        Ok(Response::new(self.certificate(issued).await?))
    }

    pub(super) async fn renew(&self, request: Request<RenewCertificateRequest>) -> Result<Response<RenewCertificateResponse>, Status> {
        let der = presented(&request)?;
        let req = request.into_inner();
        // At most the default: a renewed certificate outlives a revocation
        // of its enrolment by no more than that.
        let ttl = certificate_request(&req.csr_pem, req.ttl.as_ref(), ca::DEFAULT_TTL, Vec::new())?;
        let issued = match self.ca.renew(der.as_ref(), &req.csr_pem, ttl).await {
            Ok(issued) => issued,
            Err(e) => return Err(self.refused(&der, e).await),
        };
        let IssueCertificateResponse { certificate_pem, spiffe_id, expire_time, authority_id, trust_bundle_pem } =
            self.certificate(issued).await?;
        Ok(Response::new(RenewCertificateResponse { certificate_pem, spiffe_id, expire_time, authority_id, trust_bundle_pem }))
    }

    pub(super) async fn exchange(
        &self,
        request: Request<ExchangeCertificateRequest>,
    ) -> Result<Response<ExchangeCertificateResponse>, Status> {
        let der = presented(&request)?;
        let (spiffe_id, enrolment) = match self.ca.enrolment(der.as_ref()).await {
            Ok(enrolled) => enrolled,
            Err(e) => return Err(self.refused(&der, e).await),
        };
        if enrolment.renew_until_ms.is_some() {
            let why = format!(
                "a certificate of {spiffe_id} is no login: only a platform identity's, enrolled for good ({ENROL_SCOPE}…), is; use the identity's token"
            );
            self.recorder.record("token.denied", &spiffe_id, &spiffe_id, &why).await;
            return Err(status::permission_denied("CERTIFICATE_NOT_A_LOGIN", why));
        }
        let revoked = || CaError::EnrolmentRevoked(spiffe_id.clone(), enrolment.token.clone());
        let enrolling = self.authority.token(&enrolment.token).await?.filter(|t| t.revoke_time_ms.is_none());
        let Some(enrolling) = enrolling else {
            return Err(self.refused(&der, revoked()).await);
        };
        // Issued from the enrolling token: revoking it (or the identity)
        // revokes this one too, and the writer refuses it once revoked.
        let grant = Grant {
            parent: Some(enrolment.token.clone()),
            subject: spiffe_id.clone(),
            scopes: login_scopes(enrolling.scopes),
            audience: enrolling.audience,
            ttl: tokens::DEFAULT_TTL,
            renewable: Duration::ZERO,
            artifact_digest: String::new(),
        };
        match self.authority.issue(&spiffe_id, &grant).await {
            Ok((token, info)) => Ok(Response::new(ExchangeCertificateResponse { token, info: Some(info.into()) })),
            // The writer recorded the refusal (`token.denied`).
            Err(AuthorityError::Revoked(_)) => Err(revoked().into()),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn trust_bundle(&self, _request: Request<GetTrustBundleRequest>) -> Result<Response<GetTrustBundleResponse>, Status> {
        let bundle = self.ca.bundle().await?;
        let authorities = bundle.authorities.into_iter().map(pb::CertificateAuthority::from).collect();
        Ok(Response::new(GetTrustBundleResponse { trust_bundle_pem: bundle.pem, authorities }))
    }

    pub(super) async fn rotate(
        &self,
        request: Request<RotateCertificateAuthorityRequest>,
    ) -> Result<Response<RotateCertificateAuthorityResponse>, Status> {
        let caller = auth::require(&request, "rotate:keys")?;
        let authority = self.ca.rotate(&caller.sub).await?;
        Ok(Response::new(RotateCertificateAuthorityResponse { authority: Some(authority.into()) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_gets_no_certificate_scopes() {
        let enrolling = [
            "certs:enrol:platform/provisioner",
            "certs:issue:platform/provisioner",
            "cert*",
            "*",
            "write:secrets-broker",
            "bootstrap:issue:*",
        ];
        let login = login_scopes(enrolling.map(String::from).to_vec());
        assert_eq!(login, ["write:secrets-broker", "bootstrap:issue:*"]);
    }
}
