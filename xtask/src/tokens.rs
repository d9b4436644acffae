//! `cargo xtask bench tokens`: offline access-token verification on one
//! core (target ≥ 50,000/s), against the bare Ed25519 verification of the
//! same bytes in the same run — what a token costs beyond its signature.

use ed25519_dalek::{Signer, SigningKey, Verifier};
use paved_token::{Claims, Issuer, KeySet};
use std::time::Instant;

const N: usize = 50_000;

pub fn run() -> anyhow::Result<()> {
    let issuer = Issuer::generate();
    let mut keys = KeySet::default();
    keys.insert(&issuer.kid, issuer.public());
    let now = 1_800_000_000;
    let claims = |i: usize| Claims {
        sub: format!("spiffe://paved/dev/w{i}"),
        aud: "paved.secrets_broker".into(),
        scp: vec![format!("secrets:read:w{i}/*"), "deploy:dev".into()],
        iat: now,
        exp: now + 900,
        jti: format!("t-{i}"),
        kid: String::new(),
    };
    let tokens: Vec<String> = (0..N).map(|i| issuer.sign(claims(i))).collect();

    let start = Instant::now();
    for token in &tokens {
        let c = keys.verify(token, "paved.secrets_broker", now, |_| false).map_err(|e| anyhow::anyhow!("{e}"))?;
        anyhow::ensure!(c.allows("deploy:dev"), "scope lost");
    }
    let verify = N as f64 / start.elapsed().as_secs_f64();

    // Baseline: Ed25519 alone over messages of the same length.
    let key = SigningKey::from_bytes(&rand::random());
    let public = key.verifying_key();
    let signed: Vec<(Vec<u8>, ed25519_dalek::Signature)> = tokens
        .iter()
        .map(|t| {
            let message = t.rsplit_once('.').map_or(t.as_str(), |(m, _)| m).as_bytes().to_vec();
            let signature = key.sign(&message);
            (message, signature)
        })
        .collect();
    let start = Instant::now();
    for (message, signature) in &signed {
        public.verify(message, signature)?;
    }
    let bare = N as f64 / start.elapsed().as_secs_f64();

    println!("bench tokens: offline verification of {N} access tokens on one core");
    println!("  {verify:.0} tokens/s (target ≥ 50,000/s)");
    println!("  baseline: bare Ed25519 verification of the same bytes: {bare:.0}/s; tokens run at {:.0}% of it", verify / bare * 100.0);
    anyhow::ensure!(verify >= 50_000.0, "offline verification at {verify:.0}/s, under the 50,000/s target");
    Ok(())
}
