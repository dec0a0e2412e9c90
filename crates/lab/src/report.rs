//! What the benchmarks write next to their documents: their raw JSON,
//! read back for `--render`.

use std::path::Path;

/// The report a benchmark wrote to `json`, or a one-line reason naming the
/// file.
pub fn read<T: serde::de::DeserializeOwned>(json: &Path) -> Result<T, String> {
    std::fs::read_to_string(json)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        .map_err(|e| format!("reading {}: {e}", json.display()))
}
