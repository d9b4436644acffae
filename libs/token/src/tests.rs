use super::*;

const NOW: i64 = 1_800_000_000;

fn claims() -> Claims {
    Claims {
        sub: "spiffe://paved/dev/shop".into(),
        aud: "paved.secrets_broker".into(),
        scp: vec!["secrets:read:shop/*".into(), "deploy:dev".into()],
        iat: NOW,
        exp: NOW + 900,
        ren: 0,
        jti: "t-1".into(),
        kid: String::new(),
        dig: String::new(),
    }
}

fn trusting(issuers: &[&Issuer]) -> KeySet {
    let mut keys = KeySet::default();
    for i in issuers {
        keys.insert(&i.kid, i.public());
    }
    keys
}

const AUD: &str = "paved.secrets_broker";

#[test]
fn a_token_verifies_offline_and_carries_its_scopes() {
    let issuer = Issuer::generate();
    let token = issuer.sign(claims());
    assert!(token.starts_with("pvt1."));
    let got = trusting(&[&issuer]).verify(&token, &[AUD], NOW + 10, |_| false).expect("valid");
    assert_eq!((got.sub.as_str(), got.kid.as_str()), ("spiffe://paved/dev/shop", issuer.kid.as_str()));
    assert!(got.allows("secrets:read:shop/db-password") && got.allows("deploy:dev"));
    assert!(!got.allows("secrets:read:other/db-password") && !got.allows("deploy:prod") && !got.allows("secrets:read:shop"));
}

#[test]
fn forged_expired_foreign_and_revoked_tokens_are_refused() {
    let issuer = Issuer::generate();
    let keys = trusting(&[&issuer]);
    let token = issuer.sign(claims());
    let ok = |t: &str, now: i64| keys.verify(t, &[AUD], now, |_| false);

    // Claims changed after signing (more scopes): the signature no longer holds.
    let (head, signature) = token.rsplit_once('.').expect("three parts");
    let mut forged = claims();
    forged.scp.push("secrets:read:*".into());
    forged.kid = issuer.kid.clone();
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
    assert_eq!(ok(&format!("pvt1.{body}.{signature}"), NOW), Err(TokenError::BadSignature));
    assert!(head.starts_with("pvt1."));
    // Signed by another key that claims the trusted key's id.
    let mut impostor = Issuer::generate();
    impostor.kid = issuer.kid.clone();
    assert_eq!(ok(&impostor.sign(claims()), NOW), Err(TokenError::BadSignature));
    // A key nobody trusts.
    let stranger = Issuer::generate();
    assert_eq!(ok(&stranger.sign(claims()), NOW), Err(TokenError::UnknownKey(stranger.kid.clone())));

    // Times, with the leeway.
    assert!(ok(&token, NOW + 900 + LEEWAY_SECS).is_ok());
    assert_eq!(ok(&token, NOW + 900 + LEEWAY_SECS + 1), Err(TokenError::Expired(LEEWAY_SECS + 1)));
    assert_eq!(ok(&token, NOW - LEEWAY_SECS - 1), Err(TokenError::NotYetValid));
    // Another audience, and a revoked id.
    assert_eq!(
        keys.verify(&token, &["paved.provisioner"], NOW, |_| false),
        Err(TokenError::WrongAudience { got: AUD.into(), wanted: "paved.provisioner".into() })
    );
    assert_eq!(keys.verify(&token, &[AUD], NOW, |jti| jti == "t-1"), Err(TokenError::Revoked));
}

#[test]
fn malformed_tokens_are_errors_never_panics_and_never_echoed() {
    let issuer = Issuer::generate();
    let keys = trusting(&[&issuer]);
    let long = format!("pvt1.{}.x", "a".repeat(9000));
    let cases = ["", "pvt1.", "pvt1.abc", "jwt.abc.def", "pvt1.!!!.AAAA", "pvt1.e30.AAAA", "pvt1.e30.", long.as_str()];
    for bad in cases {
        let e = keys.verify(bad, &[AUD], NOW, |_| false).expect_err(bad);
        assert!(matches!(e, TokenError::Malformed(_)), "{bad:.20}: {e:?}");
    }
    // Valid shape, claims that are not ours.
    let body = URL_SAFE_NO_PAD.encode(br#"{"sub":1}"#);
    let sig = URL_SAFE_NO_PAD.encode([0u8; 64]);
    assert_eq!(keys.verify(&format!("pvt1.{body}.{sig}"), &[AUD], NOW, |_| false), Err(TokenError::Malformed("claims are not valid")));
    // No error repeats the token it refused.
    let token = issuer.sign(claims());
    let e = keys.verify(&token, &["other"], NOW, |_| false).expect_err("wrong audience");
    assert!(!e.to_string().contains(&token[5..20]), "{e}");
}

#[test]
fn keys_rotate_with_overlap() {
    let (old, new) = (Issuer::generate(), Issuer::generate());
    let mut keys = trusting(&[&old, &new]);
    let (before, after) = (old.sign(claims()), new.sign(claims()));
    assert!(keys.verify(&before, &[AUD], NOW, |_| false).is_ok() && keys.verify(&after, &[AUD], NOW, |_| false).is_ok());
    keys.remove(&old.kid);
    assert_eq!(keys.verify(&before, &[AUD], NOW, |_| false), Err(TokenError::UnknownKey(old.kid.clone())));
    assert!(keys.verify(&after, &[AUD], NOW, |_| false).is_ok());
}

/// Found reviewing the `token` fuzz target: an expiry at the far end of the range made
/// "expired N s ago" overflow (a panic in a debug build, a negative age in
/// a release one). Only a token the key signed gets that far.
#[test]
fn an_expiry_at_the_range_end_is_expired_not_a_panic() {
    let issuer = Issuer::generate();
    let keys = trusting(&[&issuer]);
    let token = issuer.sign(Claims { exp: i64::MIN, ..claims() });
    assert_eq!(keys.verify(&token, &[AUD], NOW, |_| false), Err(TokenError::Expired(i64::MAX)));
}
