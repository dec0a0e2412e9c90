//! What every benchmark does with its files: the [`Document`] a run
//! writes as JSON and renders as Markdown and plots, reading it back, and
//! the few steps its binary takes around a run.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use serde::{Serialize, de::DeserializeOwned};

/// A plot written next to a document: the end of its file name after the
/// document's stem (`.svg`, `-times.svg`), and the SVG.
pub type Plot = (&'static str, String);

/// What a benchmark writes: its raw figures as JSON, and the Markdown
/// document and plots rendered from them.
pub trait Document: Serialize + DeserializeOwned {
    /// Reads it from the JSON a run wrote.
    fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The Markdown document, in files named `stem` (`benchmarks-scale`:
    /// `benchmarks-scale.json` next to it).
    fn markdown(&self, stem: &str) -> String;

    /// The plots written next to the document.
    fn plots(&self) -> Vec<Plot> {
        Vec::new()
    }
}

/// The report a benchmark wrote to `json`, or a one-line reason naming the
/// file.
pub fn read<D: Document>(json: &Path) -> Result<D, String> {
    std::fs::read_to_string(json)
        .map_err(|e| e.to_string())
        .and_then(|text| D::from_json(&text).map_err(|e| e.to_string()))
        .map_err(|e| format!("reading {}: {e}", json.display()))
}

/// The files `document` renders to: the Markdown at `md` and the plots next
/// to it, each with its contents.
pub fn rendered<D: Document>(document: &D, md: &Path) -> Vec<(PathBuf, String)> {
    let stem = md.file_stem().unwrap_or_default().to_string_lossy();
    let plots = document
        .plots()
        .into_iter()
        .map(|(end, svg)| (md.with_file_name(format!("{stem}{end}")), svg));
    std::iter::once((md.to_path_buf(), document.markdown(&stem)))
        .chain(plots)
        .collect()
}

/// Writes the Markdown at `md` and the plots next to it.
pub fn render<D: Document>(document: &D, md: &Path) -> Result<(), String> {
    for (path, text) in rendered(document, md) {
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Writes the JSON next to `md` (same name, `.json`), then renders.
pub fn write<D: Document>(document: &D, md: &Path) -> Result<(), String> {
    let json = md.with_extension("json");
    let text = serde_json::to_string_pretty(document).map_err(|e| e.to_string())?;
    std::fs::write(&json, text).map_err(|e| format!("writing {}: {e}", json.display()))?;
    render(document, md)
}

/// The repository's `docs/`, where the documents are written.
pub fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

/// The flags of a benchmark binary about its files.
#[derive(Debug, clap::Args)]
pub struct Files {
    /// Where to write `<out>.md`, `<out>.json` and the plots (default: the
    /// document's in docs/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Render the document (and plots) from `<out>.json` instead of
    /// running.
    #[arg(long)]
    pub render: bool,
}

/// What a benchmark binary does with its `files` (`docs/<stem>.md`,
/// `.json` and the plots, unless `--out` says otherwise): with `--render`,
/// renders the Markdown and plots from the JSON; else, in the NAT lab,
/// `run`s and writes them all.
pub fn render_or_run<D: Document>(
    stem: &str,
    files: &Files,
    run: impl FnOnce() -> Result<D, String>,
) -> ExitCode {
    let md = match &files.out {
        Some(out) => out.with_extension("md"),
        None => docs().join(format!("{stem}.md")),
    };
    exit(if files.render {
        read::<D>(&md.with_extension("json")).and_then(|document| self::render(&document, &md))
    } else {
        require_lab()
            .and_then(|()| run())
            .and_then(|document| write(&document, &md))
    })
}

/// Success, or failure after saying why.
pub fn exit(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("{why}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the NAT lab can run here, and why not.
pub fn require_lab() -> Result<(), String> {
    natlab::available().map_err(|why| format!("the benchmark needs the NAT lab: {why}"))
}

/// Builds the `relay` and `peer` examples with the profile of the running
/// binary, when cargo runs it (else uses what is there).
pub fn build_nodes() -> Result<(), String> {
    let Some(cargo) = std::env::var_os("CARGO") else {
        return Ok(());
    };
    let mut command = std::process::Command::new(cargo);
    command.args(["build", "--examples", "-p", "punchport"]);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!(
            "building the node binaries failed: cargo build exited with {status}"
        )),
        Err(e) => Err(format!("building the node binaries failed: {e}")),
    }
}
