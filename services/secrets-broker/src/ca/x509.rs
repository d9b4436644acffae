//! The X.509 the CA makes, with rcgen: its own self-signed certificate and
//! key, and SPIFFE X.509-SVIDs signed over a caller's CSR — the SPIFFE id
//! as the one URI SAN, whatever names the CSR carries.

use super::certificate::Issued;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use std::time::Duration;

/// Certificates start this much in the past: clocks differ.
pub const BACKDATE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum X509Error {
    /// The caller's CSR does not parse.
    Csr(String),
    /// What the CA makes could not be made.
    Sign(String),
}

/// A CA able to sign: its id, certificate and key.
pub struct Signer {
    pub id: String,
    pub certificate_der: Vec<u8>,
    key: KeyPair,
}

impl Signer {
    /// From a CA's stored certificate and (unsealed) key; None when the key
    /// does not parse.
    pub fn new(id: String, certificate_der: Vec<u8>, key_der: &[u8]) -> Option<Self> {
        Some(Self { id, certificate_der, key: KeyPair::try_from(key_der).ok()? })
    }
}

/// A new CA's self-signed certificate and key, valid from `not_before` to
/// `not_after` (Unix ms).
pub struct NewAuthority {
    /// The first 8 bytes of SHA-256 of its certificate, hex.
    pub id: String,
    pub certificate_der: Vec<u8>,
    pub key_der: Vec<u8>,
}

pub fn new_authority(not_before: i64, not_after: i64) -> Result<NewAuthority, X509Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|e| X509Error::Sign(e.to_string()))?;
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Paved");
    name.push(DnType::CommonName, format!("Paved internal CA {}", uuid::Uuid::now_v7()));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.subject_alt_names = vec![uri(paved_grpc::tls::TRUST_DOMAIN)?];
    params.not_before = time(not_before)?;
    params.not_after = time(not_after)?;
    params.serial_number = Some(serial());
    let certificate = params.self_signed(&key).map_err(|e| X509Error::Sign(e.to_string()))?;
    let id = hex::encode(&<sha2::Sha256 as sha2::Digest>::digest(certificate.der())[..8]);
    Ok(NewAuthority { id, certificate_der: certificate.der().to_vec(), key_der: key.serialize_der() })
}

/// A certificate signing request, parsed.
pub struct Csr(CertificateSigningRequestParams);

impl Csr {
    pub fn parse(csr_pem: &str) -> Result<Self, X509Error> {
        CertificateSigningRequestParams::from_pem(csr_pem).map(Self).map_err(|e| X509Error::Csr(e.to_string()))
    }

    /// SHA-256 of its public key, hex, as [`Signed::key_hash`].
    pub fn key_hash(&self) -> String {
        hash_key(&self.0.public_key)
    }
}

/// A certificate just signed, not yet recorded.
pub struct Signed {
    pub fingerprint: String,
    /// SHA-256 of its public key, hex: a renewal asked for again names it.
    pub key_hash: String,
    pub issued: Issued,
}

impl Signed {
    /// What its event says of it (never the certificate itself).
    pub fn detail(&self) -> String {
        format!("certificate {} by CA {}", &self.fingerprint[..16], self.issued.authority_id)
    }
}

/// A certificate for `spiffe_id` over the key of `csr`, signed by `signer`,
/// valid from `not_before` to `expire` (Unix ms).
pub fn sign(signer: Signer, csr: &Csr, spiffe_id: &str, not_before: i64, expire: i64) -> Result<Signed, X509Error> {
    let issuer = Issuer::from_ca_cert_der(&signer.certificate_der.as_slice().into(), &signer.key)
        .map_err(|e| X509Error::Sign(format!("the CA's certificate: {e}")))?;
    let mut params = CertificateParams::default();
    // SPIFFE X.509-SVID: the SPIFFE id is the one URI SAN. A platform
    // service's also names its host name (compose's and Kubernetes' service
    // name), which the SVID format allows: clients that check a host name
    // and nothing else (grpcio) can then verify it.
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![uri(spiffe_id)?];
    if let Some(service) = paved_grpc::tls::PLATFORM_SERVICES.into_iter().find(|s| paved_grpc::tls::platform_id(s) == spiffe_id) {
        params.subject_alt_names.push(SanType::DnsName(service.try_into().map_err(|e: rcgen::Error| X509Error::Sign(e.to_string()))?));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment, KeyUsagePurpose::KeyAgreement];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = time(not_before)?;
    params.not_after = time(expire)?;
    params.serial_number = Some(serial());
    let certificate = params.signed_by(&csr.0.public_key, &issuer).map_err(|e| X509Error::Sign(e.to_string()))?;
    Ok(Signed {
        fingerprint: fingerprint(certificate.der()),
        key_hash: hash_key(&csr.0.public_key),
        issued: Issued {
            certificate_pem: certificate.pem(),
            spiffe_id: spiffe_id.to_string(),
            expire_time_ms: expire,
            authority_id: signer.id,
        },
    })
}

/// Hashed as a certificate's fingerprint is, over the public key's DER.
fn hash_key(key: &impl PublicKeyData) -> String {
    fingerprint(key.der_bytes())
}

/// A certificate's key among those recorded: SHA-256 of its DER, hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(der))
}

fn time(ms: i64) -> Result<time::OffsetDateTime, X509Error> {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).map_err(|e| X509Error::Sign(e.to_string()))
}

fn uri(id: &str) -> Result<SanType, X509Error> {
    Ok(SanType::URI(id.try_into().map_err(|e: rcgen::Error| X509Error::Sign(e.to_string()))?))
}

/// 16 random bytes, positive (RFC 5280: at most 20 octets, non-negative).
fn serial() -> SerialNumber {
    let mut bytes = rand::random::<[u8; 16]>();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}
