//! Tokens at the edge: `IssueToken` (roles or scopes, only within the
//! caller's own), `RenewToken`, `RevokeToken`, `IntrospectToken`,
//! `ListTokens`.

use super::errors::caller_revoked;
use super::fields::duration;
use crate::act::Act;
use crate::authority::{self, Authority, AuthorityError, Grant, Target, Token};
use crate::recorder::Recorder;
use paved_grpc::{auth, status};
use paved_proto::secrets_broker::v1::{
    IntrospectTokenRequest, IntrospectTokenResponse, IssueTokenRequest, IssueTokenResponse, ListTokensRequest, ListTokensResponse,
    RenewTokenRequest, RenewTokenResponse, RevokeTokenRequest, RevokeTokenResponse, TokenInfo, revoke_token_request,
};
use paved_proto::timestamp_from_millis;
use paved_token::{Claims, Scope};
use std::time::Duration;
use tonic::{Request, Response, Status};

/// The scope that issues tokens for other subjects.
const ISSUE_SUBJECTS: &str = "issue:subjects";
/// The scope that revokes other subjects' tokens.
const REVOKE_TOKENS: &str = "revoke:tokens";

pub(super) struct TokensApi {
    pub authority: Authority,
    pub recorder: Recorder,
}

impl From<Token> for TokenInfo {
    fn from(t: Token) -> Self {
        TokenInfo {
            token_id: t.token_id,
            subject: t.subject,
            scopes: t.scopes,
            audience: t.audience,
            issue_time: Some(timestamp_from_millis(t.issue_time_ms)),
            expire_time: Some(timestamp_from_millis(t.expire_time_ms)),
            renewable_until: Some(timestamp_from_millis(t.renewable_until_ms)),
            revoke_time: t.revoke_time_ms.map(timestamp_from_millis),
            artifact_digest: t.artifact_digest,
        }
    }
}

/// A revocation's target as asked for: a token or a subject, not empty.
impl TryFrom<Option<revoke_token_request::Target>> for Target {
    type Error = Status;

    fn try_from(target: Option<revoke_token_request::Target>) -> Result<Self, Status> {
        match target {
            Some(revoke_token_request::Target::TokenId(id)) if !id.is_empty() => Ok(Target::Token(id)),
            Some(revoke_token_request::Target::Subject(subject)) if !subject.is_empty() => Ok(Target::Subject(subject)),
            _ => Err(status::invalid_argument(
                "INVALID_REVOKE_REQUEST",
                "name a token or a subject",
                [("target".to_string(), "token_id or subject, not empty".to_string())],
            )),
        }
    }
}

impl TokensApi {
    pub(super) async fn issue(&self, request: Request<IssueTokenRequest>) -> Result<Response<IssueTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let mut grant = grant(request.get_ref(), &caller)?;
        if let Some(refused) = refusal(&grant, &caller) {
            self.recorder.record_act(Act::new("token.denied", &caller.sub, "", &[], refused.message()).for_subject(&grant.subject)).await;
            return Err(refused);
        }
        // Never outliving the token that asked: a child lives and renews
        // only as long as its parent could.
        // The token says how long it may be renewed (signed, so no lookup).
        let parent_until = if caller.ren > 0 { caller.ren } else { caller.exp }.saturating_mul(1000);
        let left = Duration::from_millis(u64::try_from(parent_until - chrono::Utc::now().timestamp_millis()).unwrap_or(0));
        if left.is_zero() {
            return Err(status::failed_precondition(
                "TOKEN_NOT_RENEWABLE",
                "this token can no longer issue tokens: it is past its renewable_until",
            ));
        }
        grant.ttl = grant.ttl.min(left);
        grant.renewable = grant.renewable.min(left);
        let (token, info) = self.authority.issue(&caller.sub, &grant).await.map_err(|e| issue_failed(e, &caller.jti))?;
        Ok(Response::new(IssueTokenResponse { token, info: Some(info.into()) }))
    }

    pub(super) async fn renew(&self, request: Request<RenewTokenRequest>) -> Result<Response<RenewTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let ttl = duration(request.get_ref().ttl.as_ref(), "ttl", authority::DEFAULT_TTL, authority::MAX_TTL)
            .map_err(|v| status::invalid_argument("INVALID_TTL", "invalid ttl", [v]))?;
        let ttl = request.get_ref().ttl.is_some().then_some(ttl);
        let (token, info) = self.authority.renew(&caller, ttl).await?;
        Ok(Response::new(RenewTokenResponse { token, info: Some(info.into()) }))
    }

    pub(super) async fn revoke(&self, request: Request<RevokeTokenRequest>) -> Result<Response<RevokeTokenResponse>, Status> {
        let caller = auth::caller(&request)?;
        let target = Target::try_from(request.into_inner().target)?;
        // Anyone may revoke their own tokens; others' need `revoke:tokens`.
        let own = match &target {
            Target::Token(id) => id == &caller.jti || self.authority.token(id).await?.is_some_and(|t| t.subject == caller.sub),
            Target::Subject(subject) => subject == &caller.sub,
            Target::IssuedFrom(_) => false,
        };
        if !own && !caller.allows(REVOKE_TOKENS) {
            let refused = auth::missing_scope(&caller.sub, REVOKE_TOKENS);
            // A subject is a name (the audit log commits to it); a token id is not.
            let act = match &target {
                Target::Subject(subject) => Act::new("token.denied", &caller.sub, "", &[], refused.message()).for_subject(subject),
                Target::Token(id) | Target::IssuedFrom(id) => Act::new("token.denied", &caller.sub, id, &[], refused.message()),
            };
            self.recorder.record_act(act).await;
            return Err(refused);
        }
        let revoked = self.authority.revoke(&caller.sub, &target, &format!("revoked by {}", caller.sub)).await?;
        Ok(Response::new(RevokeTokenResponse { revoked: i32::try_from(revoked).unwrap_or(i32::MAX) }))
    }

    pub(super) async fn introspect(&self, request: Request<IntrospectTokenRequest>) -> Result<Response<IntrospectTokenResponse>, Status> {
        let token = request.into_inner().token;
        let answer = match self.authority.introspect(&token).await? {
            Ok(claims) => IntrospectTokenResponse {
                active: true,
                reason: String::new(),
                info: Some(TokenInfo {
                    token_id: claims.jti,
                    subject: claims.sub,
                    scopes: claims.scp,
                    audience: claims.aud,
                    issue_time: Some(timestamp_from_millis(claims.iat.saturating_mul(1000))),
                    expire_time: Some(timestamp_from_millis(claims.exp.saturating_mul(1000))),
                    artifact_digest: claims.dig,
                    ..Default::default()
                }),
            },
            Err(e) => IntrospectTokenResponse { active: false, reason: e.to_string(), info: None },
        };
        Ok(Response::new(answer))
    }

    pub(super) async fn list(&self, request: Request<ListTokensRequest>) -> Result<Response<ListTokensResponse>, Status> {
        let req = request.into_inner();
        let (size, offset) = status::page(req.page_size, &req.page_token)?;
        let tokens = self.authority.tokens(&req.subject, size, offset).await?;
        let next_page_token = status::next_page_token(offset, size, tokens.len());
        Ok(Response::new(ListTokensResponse { tokens: tokens.into_iter().map(TokenInfo::from).collect(), next_page_token }))
    }
}

/// As `Status::from`, but the caller's own token revoked before verifiers knew is
/// answered as they will answer it.
fn issue_failed(e: AuthorityError, caller: &str) -> Status {
    match e {
        AuthorityError::Revoked(id) if id == caller => caller_revoked(),
        e => e.into(),
    }
}

/// The grant a request asks for, validated against what the caller holds.
fn grant(req: &IssueTokenRequest, caller: &Claims) -> Result<Grant, Status> {
    let mut violations = Vec::new();
    if req.subject.is_empty() || req.subject.len() > 256 || req.subject.chars().any(char::is_control) {
        violations.push(("subject".to_string(), "a user or SPIFFE id of 1 to 256 printable characters".to_string()));
    }
    let mut scopes = req.scopes.clone();
    if !req.role.is_empty() {
        match paved_token::role_scopes(&req.role, &req.environment, &req.workloads) {
            Ok(s) if s.iter().all(|s| Scope(s).is_valid()) => scopes.extend(s),
            Ok(_) => violations.push(("workloads".into(), "a workload name, or a prefix ending in `-*` or `*` alone".into())),
            Err(v) => violations.push(v),
        }
    }
    if scopes.is_empty() && violations.is_empty() {
        violations.push(("scopes".into(), "name scopes or a role".into()));
    }
    for (i, scope) in req.scopes.iter().enumerate() {
        if !Scope(scope).is_valid() {
            violations
                .push((format!("scopes[{i}]"), "printable, at most 256 characters, `*` only at the end after `:`, `/` or `-`".into()));
        }
    }
    let ttl = duration(req.ttl.as_ref(), "ttl", authority::DEFAULT_TTL, authority::MAX_TTL);
    let renewable = duration(req.max_ttl.as_ref(), "max_ttl", authority::DEFAULT_RENEWABLE, authority::MAX_RENEWABLE);
    let audience = if req.audience.is_empty() { auth::PLATFORM_AUDIENCE.to_string() } else { req.audience.clone() };
    if !auth::AUDIENCES.contains(&audience.as_str()) {
        violations.push(("audience".into(), format!("one of {}", auth::AUDIENCES.join(", "))));
    }
    let (ttl, renewable) = match (ttl, renewable) {
        (Ok(t), Ok(r)) if violations.is_empty() => (t, r),
        (t, r) => {
            violations.extend(t.err());
            violations.extend(r.err());
            return Err(status::invalid_argument("INVALID_TOKEN_REQUEST", "invalid token request", violations));
        }
    };
    scopes.sort();
    scopes.dedup();
    Ok(Grant {
        parent: Some(caller.jti.clone()),
        subject: req.subject.clone(),
        scopes,
        audience,
        ttl,
        renewable,
        artifact_digest: String::new(),
    })
}

/// Why `caller` may not issue `grant`, if it may not: a token hands on only
/// what its holder has, never a longer reach than the holder's own
/// audience, and tokens for someone else need `issue:subjects` (a subject
/// names whose tokens a holder may revoke as its own).
fn refusal(grant: &Grant, caller: &Claims) -> Option<Status> {
    if let Some(scope) = grant.scopes.iter().find(|s| !Scope(s).within(&caller.scp)) {
        let message = format!("{} cannot grant scope {scope}: it does not hold it", caller.sub);
        return Some(status::permission_denied_for("SCOPE_NOT_HELD", message, &[("scope", scope)]));
    }
    if caller.aud != auth::PLATFORM_AUDIENCE && caller.aud != grant.audience {
        let message = format!("a token for {} cannot issue tokens for {}", caller.aud, grant.audience);
        return Some(status::permission_denied_for("AUDIENCE_NOT_HELD", message, &[("audience", &grant.audience)]));
    }
    if grant.subject != caller.sub && !caller.allows(ISSUE_SUBJECTS) {
        let message = format!("{} lacks scope {ISSUE_SUBJECTS} to issue for {}", caller.sub, grant.subject);
        return Some(status::permission_denied_for("MISSING_SCOPE", message, &[("scope", ISSUE_SUBJECTS)]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leases::LeaseError;

    #[test]
    fn a_caller_revoked_before_verifiers_knew_is_answered_as_they_will() {
        use tonic_types::StatusExt;
        let revoked = [issue_failed(AuthorityError::Revoked("me".into()), "me"), Status::from(LeaseError::TokenRevoked("me".into()))];
        for status in revoked {
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
            assert_eq!(status.get_details_error_info().expect("reason").reason, "TOKEN_REVOKED");
        }
        let other = issue_failed(AuthorityError::Revoked("parent".into()), "me");
        assert_eq!(other.code(), tonic::Code::FailedPrecondition, "another token's revocation is not the caller's: {other:?}");
    }
}
