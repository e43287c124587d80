//! `berth images`, `images import FILE`, `pull`, `rmi`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_agent::cri_client::CriClient;
use berth_agent::images::{ImageStore, RegistryConfig};
use berth_proto::v1 as cri;

use crate::table;

#[derive(clap::Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    pub command: Option<ImagesCommand>,
}

#[derive(clap::Subcommand)]
pub enum ImagesCommand {
    /// Load an OCI image-layout archive or a `docker save` archive (no
    /// registry needed).
    Import {
        /// The archive.
        file: PathBuf,
    },
}

/// Imports an archive straight into the store under `root`.
pub fn import(root: &Path, file: &Path) -> anyhow::Result<()> {
    let store = ImageStore::open(&root.join("images"), RegistryConfig::default())
        .with_context(|| format!("open the image store in {}", root.display()))?;
    let images = store
        .import(file)
        .with_context(|| format!("import {}", file.display()))?;
    for i in images {
        let names = if i.repo_tags.is_empty() {
            "<none>".to_string()
        } else {
            i.repo_tags.join(", ")
        };
        println!("imported {names} ({})", i.id);
    }
    Ok(())
}

fn spec(image: &str) -> Option<cri::ImageSpec> {
    Some(cri::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    })
}

/// Lists images.
pub async fn list(c: &mut CriClient) -> anyhow::Result<()> {
    let images = c
        .images
        .list_images(cri::ListImagesRequest::default())
        .await?
        .into_inner()
        .images;
    let mut rows = Vec::new();
    for i in images {
        let id = table::short(i.id.trim_start_matches("sha256:"));
        let size = format!("{:.1}MB", i.size as f64 / 1e6);
        if i.repo_tags.is_empty() {
            rows.push(vec![
                "<none>".into(),
                "<none>".into(),
                id.clone(),
                size.clone(),
            ]);
        }
        for t in &i.repo_tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t, ""));
            rows.push(vec![
                repo.to_string(),
                tag.to_string(),
                id.clone(),
                size.clone(),
            ]);
        }
    }
    table::print(&["IMAGE", "TAG", "IMAGE ID", "SIZE"], &rows);
    Ok(())
}

/// Pulls an image.
pub async fn pull(c: &mut CriClient, image: &str) -> anyhow::Result<()> {
    let r = c
        .images
        .pull_image(cri::PullImageRequest {
            image: spec(image),
            ..Default::default()
        })
        .await
        .with_context(|| format!("pull {image}"))?
        .into_inner();
    println!("Image is up to date for {}", r.image_ref);
    Ok(())
}

/// Removes an image.
pub async fn rmi(c: &mut CriClient, image: &str) -> anyhow::Result<()> {
    let found = c
        .images
        .image_status(cri::ImageStatusRequest {
            image: spec(image),
            verbose: false,
        })
        .await?
        .into_inner()
        .image;
    let Some(found) = found else {
        anyhow::bail!("no image {image:?}");
    };
    c.images
        .remove_image(cri::RemoveImageRequest {
            image: spec(&found.id),
        })
        .await?;
    println!("Deleted: {}", found.id);
    Ok(())
}
