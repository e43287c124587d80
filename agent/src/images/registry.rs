//! Talking to one registry endpoint (the registry itself or a mirror) over
//! the OCI distribution protocol: manifests and digest-verified blobs, with
//! bearer-token or basic auth and retries.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::manifest::OciDescriptor;

use super::digest::Digest;
use super::error::ImageError;
use super::manifest::{Descriptor, ACCEPTED};
use super::reference::Reference;
use super::registry_config::Endpoint;

/// Credentials for a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RegistryAuth {
    /// No credentials.
    #[default]
    Anonymous,
    /// Username and password: sent as basic auth, or traded for a bearer
    /// token when the registry asks for one.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A bearer token used as is (an identity or registry token).
    Bearer(String),
}

impl RegistryAuth {
    /// Builds credentials from CRI's `AuthConfig` fields: a registry token
    /// wins, then username and password, then `auth` (base64 of
    /// `user:password`); none of them means anonymous.
    pub fn from_cri(
        username: &str,
        password: &str,
        auth: &str,
        registry_token: &str,
    ) -> Result<Self, ImageError> {
        if !registry_token.is_empty() {
            return Ok(RegistryAuth::Bearer(registry_token.to_string()));
        }
        if !username.is_empty() {
            return Ok(RegistryAuth::Basic {
                username: username.into(),
                password: password.into(),
            });
        }
        if auth.is_empty() {
            return Ok(RegistryAuth::Anonymous);
        }
        let bad = |reason: &str| ImageError::malformed("registry auth", reason);
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("auth is not base64"))?;
        let decoded = String::from_utf8(decoded).map_err(|_| bad("auth is not utf-8"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| bad("auth is not user:password"))?;
        Ok(RegistryAuth::Basic {
            username: username.into(),
            password: password.into(),
        })
    }

    fn to_client(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            RegistryAuth::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            RegistryAuth::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone())
            }
            RegistryAuth::Bearer(token) => oci_client::secrets::RegistryAuth::Bearer(token.clone()),
        }
    }
}

/// How many times a request is tried before giving up.
const ATTEMPTS: u32 = 3;

/// A connection to one endpoint for one repository.
pub struct RegistryClient {
    client: oci_client::Client,
    auth: oci_client::secrets::RegistryAuth,
    /// The reference with the endpoint swapped in (for mirrors).
    base: oci_client::Reference,
    endpoint: Endpoint,
}

impl RegistryClient {
    /// A client for `reference`'s repository at `endpoint`.
    pub fn new(endpoint: &Endpoint, reference: &Reference, auth: &RegistryAuth) -> Self {
        let config = ClientConfig {
            protocol: if endpoint.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: concat!("berth/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        let mut base = oci_client::Reference::with_tag(
            reference.registry.clone(),
            reference.repository.clone(),
            reference.tag.clone().unwrap_or_else(|| "latest".into()),
        );
        if endpoint.is_mirror {
            base.set_mirror_registry(endpoint.host.clone());
        }
        RegistryClient {
            client: oci_client::Client::new(config),
            auth: auth.to_client(),
            base,
            endpoint: endpoint.clone(),
        }
    }

    /// The endpoint's host, for messages.
    pub fn host(&self) -> &str {
        &self.endpoint.host
    }

    fn at(&self, tag_or_digest: TagOrDigest<'_>) -> oci_client::Reference {
        let mut r = match tag_or_digest {
            TagOrDigest::Tag(t) => oci_client::Reference::with_tag(
                self.base.registry().to_string(),
                self.base.repository().to_string(),
                t.to_string(),
            ),
            TagOrDigest::Digest(d) => oci_client::Reference::with_digest(
                self.base.registry().to_string(),
                self.base.repository().to_string(),
                d.to_string(),
            ),
        };
        if self.endpoint.is_mirror {
            r.set_mirror_registry(self.endpoint.host.clone());
        }
        r
    }

    /// Fetches a manifest or index by tag or digest; returns its bytes and
    /// digest (verified against `digest` when fetching by digest).
    pub async fn manifest(
        &self,
        tag_or_digest: TagOrDigest<'_>,
    ) -> Result<(Vec<u8>, Digest), ImageError> {
        let reference = self.at(tag_or_digest);
        let what = format!("manifest {reference}");
        let (bytes, _) = retry(&what, || {
            self.client
                .pull_manifest_raw(&reference, &self.auth, &ACCEPTED)
        })
        .await?;
        let actual = Digest::of_bytes(&bytes);
        if let TagOrDigest::Digest(expected) = tag_or_digest {
            expected.verify(&actual, what)?;
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Fetches a small blob (a config) into memory, verifying its digest.
    pub async fn blob_bytes(&self, desc: &Descriptor) -> Result<Vec<u8>, ImageError> {
        let reference = self.at(TagOrDigest::Digest(&desc.digest));
        let what = format!("blob {}", desc.digest);
        let oci = oci_descriptor(desc);
        let bytes = retry(&what, || async {
            let mut buf = Vec::with_capacity(desc.size as usize);
            self.client
                .pull_blob(&reference, &oci, &mut buf)
                .await
                .map(|()| buf)
        })
        .await?;
        desc.digest.verify(&Digest::of_bytes(&bytes), what)?;
        Ok(bytes)
    }

    /// Downloads a blob into the file `dest` (created or truncated), with
    /// its digest verified while streaming.
    pub async fn blob_to_file(&self, desc: &Descriptor, dest: &Path) -> Result<(), ImageError> {
        let reference = self.at(TagOrDigest::Digest(&desc.digest));
        let oci = oci_descriptor(desc);
        retry(&format!("blob {}", desc.digest), || async {
            let file = tokio::fs::File::create(dest).await?;
            let mut writer = tokio::io::BufWriter::with_capacity(256 * 1024, file);
            self.client.pull_blob(&reference, &oci, &mut writer).await
        })
        .await
    }
}

/// What to fetch a manifest by.
#[derive(Debug, Clone, Copy)]
pub enum TagOrDigest<'a> {
    /// A tag.
    Tag(&'a str),
    /// A digest.
    Digest(&'a Digest),
}

fn oci_descriptor(desc: &Descriptor) -> OciDescriptor {
    OciDescriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest.to_string(),
        size: desc.size as i64,
        ..OciDescriptor::default()
    }
}

/// Errors that retrying cannot fix.
fn is_permanent(e: &OciDistributionError) -> bool {
    matches!(
        e,
        OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::ImageManifestNotFoundError(_)
            | OciDistributionError::ManifestParsingError(_)
            | OciDistributionError::RegistryError { .. }
    ) || matches!(e, OciDistributionError::ServerError { code, .. } if (400..500).contains(code))
}

/// Runs `op` up to [`ATTEMPTS`] times with a growing pause between tries.
async fn retry<T, F, Fut>(what: &str, mut op: F) -> Result<T, ImageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < ATTEMPTS && !is_permanent(&e) => {
                tracing::debug!(what, attempt, error = %e, "retrying");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(e) => {
                return Err(ImageError::Registry {
                    reference: what.to_string(),
                    errors: e.to_string(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RegistryAuth;

    #[test]
    fn cri_auth_fields_in_order_of_precedence() {
        let basic = |u: &str, p: &str| RegistryAuth::Basic {
            username: u.into(),
            password: p.into(),
        };
        assert_eq!(
            RegistryAuth::from_cri("", "", "", "").unwrap(),
            RegistryAuth::Anonymous
        );
        assert_eq!(
            RegistryAuth::from_cri("u", "p", "", "").unwrap(),
            basic("u", "p")
        );
        // base64("alice:s3:cret")
        assert_eq!(
            RegistryAuth::from_cri("", "", "YWxpY2U6czM6Y3JldA==", "").unwrap(),
            basic("alice", "s3:cret")
        );
        assert_eq!(
            RegistryAuth::from_cri("u", "p", "", "tok").unwrap(),
            RegistryAuth::Bearer("tok".into())
        );
        assert!(RegistryAuth::from_cri("", "", "!!", "").is_err());
        assert!(RegistryAuth::from_cri("", "", "bm9jb2xvbg==", "").is_err());
    }
}
