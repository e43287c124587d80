//! The berth node agent: CRI server, pod and container state, image store.

pub mod config;
pub mod cri_client;
pub mod daemon;
pub mod default_image;
pub mod image_service;
pub mod images;
pub mod kubelet;
pub mod manifest;
pub mod monitor;
pub mod spec;
pub mod streaming;
