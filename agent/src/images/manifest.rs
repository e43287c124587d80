//! Manifests and indexes, OCI and Docker schema2 alike (same JSON shape,
//! different media types), and choosing one platform from an index.

use serde::{Deserialize, Serialize};

use super::digest::Digest;
use super::error::ImageError;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Every manifest media type a pull accepts.
pub const ACCEPTED: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The content's media type.
    #[serde(default)]
    pub media_type: String,
    /// The content's digest.
    pub digest: Digest,
    /// The content's size in bytes.
    pub size: u64,
    /// For index entries: the platform of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations (`org.opencontainers.image.ref.name` in image layouts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::HashMap<String, String>>,
}

/// An index entry's platform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `linux`, ...
    pub os: String,
    /// `v8`, ... if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// linux/amd64, the default platform pulled.
    pub fn linux_amd64() -> Self {
        Platform {
            architecture: "amd64".into(),
            os: "linux".into(),
            variant: None,
        }
    }

    /// `os/arch[/variant]`.
    pub fn describe(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// An image manifest: one config and its layers, bottom first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The manifest's media type, when it states it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The image config blob.
    pub config: Descriptor,
    /// Layer blobs, bottom first.
    pub layers: Vec<Descriptor>,
}

/// An image index or manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// The index's media type, when it states it.
    #[serde(default)]
    pub media_type: Option<String>,
    /// The manifests it lists.
    pub manifests: Vec<Descriptor>,
}

/// A parsed manifest document of either kind.
#[derive(Debug, Clone)]
pub enum ManifestDoc {
    /// A single-platform image.
    Image(Manifest),
    /// A list of images.
    Index(Index),
}

impl ManifestDoc {
    /// Parses `bytes`, using the media type from the transport if the
    /// document does not state it. `what` names the document in errors.
    pub fn parse(
        bytes: &[u8],
        transport_type: Option<&str>,
        what: &str,
    ) -> Result<Self, ImageError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            media_type: Option<String>,
            manifests: Option<serde_json::Value>,
            schema_version: Option<u32>,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(ImageError::json(what))?;
        if probe.schema_version.is_some_and(|v| v != 2) {
            return Err(ImageError::malformed(
                what,
                "only schema version 2 manifests are supported",
            ));
        }
        let media = probe.media_type.as_deref().or(transport_type).unwrap_or("");
        let is_index = media == OCI_INDEX
            || media == DOCKER_LIST
            || (media.is_empty() && probe.manifests.is_some());
        if is_index {
            Ok(ManifestDoc::Index(
                serde_json::from_slice(bytes).map_err(ImageError::json(what))?,
            ))
        } else if media == OCI_MANIFEST || media == DOCKER_MANIFEST || media.is_empty() {
            Ok(ManifestDoc::Image(
                serde_json::from_slice(bytes).map_err(ImageError::json(what))?,
            ))
        } else {
            Err(ImageError::malformed(what, format!("media type {media:?}")))
        }
    }
}

impl Index {
    /// The first manifest for `platform` (a variant is matched only when
    /// `platform` names one).
    pub fn select(&self, platform: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == platform.os
                    && p.architecture == platform.architecture
                    && (platform.variant.is_none() || p.variant == platform.variant)
            })
        })
    }
}

/// Whether a layer media type is one berth can unpack (tar, gzip or zstd;
/// OCI or Docker).
pub fn is_layer_type(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn selects_linux_amd64_from_a_docker_list() {
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D1}","size":1,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}},
            {{"mediaType":"{DOCKER_MANIFEST}","digest":"{D2}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#
        );
        let ManifestDoc::Index(idx) = ManifestDoc::parse(doc.as_bytes(), None, "t").unwrap() else {
            panic!()
        };
        assert_eq!(
            idx.select(&Platform::linux_amd64())
                .unwrap()
                .digest
                .as_str(),
            D2
        );
        let arm = Platform {
            architecture: "arm64".into(),
            os: "linux".into(),
            variant: Some("v8".into()),
        };
        assert_eq!(idx.select(&arm).unwrap().digest.as_str(), D1);
        let s390 = Platform {
            architecture: "s390x".into(),
            os: "linux".into(),
            variant: None,
        };
        assert!(idx.select(&s390).is_none());
    }

    #[test]
    fn parses_an_oci_manifest_without_media_type() {
        let doc = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":3}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":9}}]}}"#
        );
        let ManifestDoc::Image(m) = ManifestDoc::parse(doc.as_bytes(), None, "t").unwrap() else {
            panic!()
        };
        assert_eq!(m.layers.len(), 1);
        assert!(is_layer_type(&m.layers[0].media_type));
        assert!(ManifestDoc::parse(br#"{"schemaVersion":1}"#, None, "t").is_err());
    }
}
