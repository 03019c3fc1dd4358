//! `helios crdgen`: write the CRD YAML generated from the Rust types (or check it is current).

use std::path::{Path, PathBuf};

/// Arguments of `helios crdgen`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory the YAML files are written to.
    #[arg(long, default_value = "crds/yaml")]
    out: PathBuf,
    /// Print one multi-document stream to stdout instead of writing files.
    #[arg(long)]
    stdout: bool,
    /// Do not write; fail when the files in --out differ from the generated ones.
    #[arg(long)]
    check: bool,
}

/// Why `crdgen` failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Rendering failed.
    #[error(transparent)]
    Generate(#[from] helios_crds::generate::GenerateError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `--check` found drift.
    #[error("{0} is out of date: run `cargo run -p helios -- crdgen`")]
    Drift(PathBuf),
}

/// Run the subcommand.
pub fn run(args: &Args) -> Result<(), Error> {
    if args.stdout {
        print!("{}", helios_crds::generate::all_crds_yaml()?);
        return Ok(());
    }
    std::fs::create_dir_all(&args.out).map_err(|source| io(&args.out, source))?;
    for (name, yaml) in helios_crds::generate::crd_files()? {
        let path = args.out.join(name);
        if args.check {
            let current = std::fs::read_to_string(&path).unwrap_or_default();
            if current != yaml {
                return Err(Error::Drift(path));
            }
        } else {
            std::fs::write(&path, yaml).map_err(|source| io(&path, source))?;
            tracing::info!(path = %path.display(), "wrote CRD");
        }
    }
    Ok(())
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
