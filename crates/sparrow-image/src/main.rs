//! `sparrow-image`: writes the mesh's OCI layout and archive from built binaries
//! (`scripts/build-images.sh` runs it).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use sparrow_image::{MeshInputs, archive, build_image, layout_files, mesh_images, write_layout};

/// Build the mesh's images (controller, proxy, init) into an OCI layout and an OCI archive.
#[derive(Debug, Parser)]
#[command(name = "sparrow-image", max_term_width = 100)]
struct Args {
    /// The layout directory to write; the archive goes beside the blobs in it.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The static sparrow-controller binary.
    #[arg(long, value_name = "FILE")]
    controller: PathBuf,
    /// The static sparrow-proxy binary.
    #[arg(long, value_name = "FILE")]
    proxy: PathBuf,
    /// The static sparrow-init binary.
    #[arg(long, value_name = "FILE")]
    init: PathBuf,
    /// The netfilter tree for the init image (xtables binaries, libraries, loader, extensions).
    #[arg(long, value_name = "DIR")]
    init_root: PathBuf,
    /// The images' tag and version label (the crate version).
    #[arg(long, value_name = "TAG")]
    tag: String,
    /// The commit the binaries were built from.
    #[arg(long, value_name = "COMMIT")]
    revision: String,
    /// The source repository URL.
    #[arg(long, value_name = "URL")]
    source: String,
    /// Seconds since the epoch for every mtime and the config's `created` (SOURCE_DATE_EPOCH).
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    epoch: u64,
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line; a cause already spelled out by its parent is not repeated.
            let mut line = String::new();
            for cause in error.chain() {
                let text = cause.to_string();
                if !line.contains(&text) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&text);
                }
            }
            eprintln!("error: {line}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let inputs = MeshInputs {
        controller: args.controller,
        proxy: args.proxy,
        init: args.init,
        init_root: args.init_root,
        version: args.tag.clone(),
        revision: args.revision,
        source: args.source,
        epoch: args.epoch,
    };
    // Each image is compressed on a thread of its own: gzip is most of the build's time.
    let specs = mesh_images(&inputs)?;
    let images = std::thread::scope(|scope| {
        let builds: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || build_image(spec)))
            .collect();
        builds
            .into_iter()
            .map(|build| build.join().expect("an image build thread panicked"))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let files = layout_files(&images)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_layout(&args.out, &files)
        .with_context(|| format!("cannot write the layout {}", args.out.display()))?;
    let tar = archive(&files, args.epoch).context("cannot write the archive")?;
    let tar_path = args.out.join(format!("sparrow-images-{}.tar", args.tag));
    std::fs::write(&tar_path, &tar)
        .with_context(|| format!("cannot write {}", tar_path.display()))?;
    for image in &images {
        println!(
            "{:<28} {}  {} bytes compressed",
            image.ref_name(),
            image.index.digest,
            image.layer.bytes.len() + image.config.bytes.len() + image.manifest.bytes.len()
        );
    }
    println!(
        "{} {}",
        tar_path.display(),
        sparrow_image::sha256_digest(&tar)
    );
    // On stderr: standard output is one digest a line, for scripts.
    eprintln!(
        "built {} images in {:.2} s",
        images.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
