//! Audits a labelled image set for shortcuts a detector could learn instead of
//! manipulation: per class, the format, JPEG quality (from the quantisation tables),
//! chroma subsampling, progressive coding, size and aspect, bytes per pixel, EXIF and its
//! software tag, PNG bit depth; identical files across classes and near-identical images
//! between training and validation. A feature that alone separates the classes with an
//! AUC of 0.8 or more is reported as a sentence.
//!
//! ```text
//! cargo run --release --example audit -- --data ../shared/data/lfw-faceswap/train --val ../shared/data/lfw-faceswap/val
//! audited 1500 real and 1500 fake images (2400 training, 600 validation; 0 unreadable)
//! feature                 AUC  real                               fake
//! format                 0.50  JPEG 100%                          JPEG 100%
//! jpeg_quality           1.00  90                                 95                                 !
//! ...
//! shortcut: real images are JPEG quality 90, fake 95: a model can tell them apart without looking at faces (this alone separates the classes with AUC 1.00)
//! ```
//!
//! `--json` prints the report as JSON instead (the findings' sentences included);
//! `--strict` exits with status 3 when a shortcut is found, for use in a pipeline.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use deepfake::data::audit::{self, AuditOptions};
use deepfake::data::ImageFolder;

/// Audits an image set for shortcuts (JPEG settings, sizes, metadata, duplicates).
#[derive(Debug, Parser)]
#[command(name = "audit")]
struct Args {
    /// The training set: one sub-folder per class (real/, fake/ or the names `train` takes).
    #[arg(long)]
    data: PathBuf,
    /// The validation set, audited with it and checked for images shared with it.
    #[arg(long)]
    val: Option<PathBuf>,
    /// Flag a feature whose one-feature AUC reaches this (in (0.5, 1]).
    #[arg(long, default_value_t = 0.8)]
    flag_auc: f64,
    /// Near duplicates: perceptual hashes at most this many bits apart (0–16).
    #[arg(long, default_value_t = 4)]
    near_bits: u32,
    /// Skip decoding the images (no near-duplicate search; the header features remain).
    #[arg(long)]
    no_hash: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Exit with status 3 when a shortcut is found.
    #[arg(long)]
    strict: bool,
}

fn run(args: &Args) -> Result<bool> {
    let options = AuditOptions {
        flag_auc: args.flag_auc,
        near_duplicate_bits: args.near_bits,
        perceptual_hash: !args.no_hash,
        ..AuditOptions::default()
    };
    options.check().context("--flag-auc / --near-bits")?;
    let train = ImageFolder::open(&args.data).context("--data")?;
    let val = args
        .val
        .as_ref()
        .map(ImageFolder::open)
        .transpose()
        .context("--val")?;
    let report = audit::audit(&train, val.as_ref(), &options)?;
    let text = if args.json {
        serde_json::to_string_pretty(&report)? + "\n"
    } else {
        // Line by line: file names in the report cannot forge a line or drive the terminal.
        report
            .to_string()
            .lines()
            .map(|l| deepfake::escape_message(l) + "\n")
            .collect()
    };
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        // A reader that stopped early (`| head`) is not an error of the audit.
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing the report to stdout");
        }
    }
    if !args.json {
        for bad in &report.unreadable {
            deepfake::note(&format!(
                "not audited: {}: {}",
                bad.path.display(),
                bad.reason
            ));
        }
    }
    Ok(report.flagged())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) if args.strict => ExitCode::from(3),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!(
                "error: {}",
                deepfake::escape_message(&deepfake::error_text(e.as_ref()))
            );
            ExitCode::FAILURE
        }
    }
}
