//! Test support: namespaces, the meshed pod, traffic.

#![allow(dead_code)]

pub mod mesh;
pub mod netns;
pub mod traffic;
