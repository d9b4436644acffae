//! Tokens as every service checks them: `pvt1.` access tokens, and the
//! gate in front of a `pvb1.` bootstrap token's lookup (the rest of a
//! bootstrap token is opaque: only its SHA-256 is looked up).

use paved_token::{Claims, Issuer, KeySet, LEEWAY_SECS};

const NOW: i64 = 1_800_000_000;
const AUDIENCES: &[&str] = &["paved.provisioner", "paved.secrets_broker"];

/// The fixed signing key and a key set that trusts it.
pub(crate) fn keys() -> (Issuer, KeySet) {
    let signing = Issuer::from_seed(&[9; 32]);
    let mut set = KeySet::default();
    set.insert(&signing.kid, signing.public());
    (signing, set)
}

pub fn token(data: &[u8]) {
    // Strings from the text, numbers from the raw bytes.
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let bootstrap = text.starts_with("pvb1.") && text.len() <= 128;
    assert_eq!(paved_secrets_broker::bootstrap::well_formed(text), bootstrap, "the bootstrap gate on {text:?}");
    let (signing, set) = keys();
    // A token from outside: whatever verifies is in time, for us, and not revoked.
    if let Ok(claims) = set.verify(text, AUDIENCES, NOW, |jti| jti == "revoked") {
        assert!(NOW <= claims.exp.saturating_add(LEEWAY_SECS), "an expired token verified");
        assert!(AUDIENCES.contains(&claims.aud.as_str()), "a token for {:?} verified", claims.aud);
        assert_ne!(claims.jti, "revoked", "a revoked token verified");
    }
    // Our own token, its claims made of the input: it verifies exactly when
    // the rules say (in time, give or take the leeway, and for us), to
    // exactly its claims; changed anywhere, it does not verify at all.
    let number = |at: usize| {
        let mut bytes = [0u8; 8];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = data.get(at + i).copied().unwrap_or(0);
        }
        i64::from_le_bytes(bytes)
    };
    // Times near now half of the time, anything the other half.
    let time = |at: usize| if data.get(at).is_some_and(|b| b & 1 == 0) { NOW + number(at) % 600 } else { number(at) };
    let audiences = ["paved.provisioner", "paved.secrets_broker", "paved.audit"];
    let claims = Claims {
        sub: text.to_string(),
        aud: audiences[usize::from(data.first().copied().unwrap_or(0)) % audiences.len()].to_string(),
        scp: text.split(' ').map(str::to_string).collect(),
        iat: time(1),
        exp: time(9),
        ren: 0,
        jti: text.chars().rev().collect(),
        kid: String::new(),
        // Present or absent (then left out of the claims), round-tripped alike.
        dig: text.chars().filter(char::is_ascii_hexdigit).collect(),
    };
    let token = signing.sign(claims.clone());
    let valid = token.len() <= 8 * 1024
        && NOW <= claims.exp.saturating_add(LEEWAY_SECS)
        && claims.iat <= NOW.saturating_add(LEEWAY_SECS)
        && AUDIENCES.contains(&claims.aud.as_str());
    match set.verify(&token, AUDIENCES, NOW, |_| false) {
        Ok(got) => {
            assert!(valid, "verified against the rules: {claims:?}");
            assert_eq!(got, Claims { kid: signing.kid.clone(), ..claims });
        }
        Err(e) => assert!(!valid, "refused against the rules ({e}): {claims:?}"),
    }
    let at = data.iter().map(|b| usize::from(*b)).sum::<usize>() % token.len();
    let mut changed = token.clone().into_bytes();
    changed[at] ^= 0x01;
    if let Ok(changed) = String::from_utf8(changed) {
        assert!(set.verify(&changed, AUDIENCES, NOW, |_| false).is_err(), "a token changed at byte {at} still verifies");
    }
}
