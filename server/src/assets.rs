//! The browser bundle in the built site (`LEPTOS_SITE_ROOT/pkg`): which file names the pages
//! link to, and how long browsers may keep each file.
//!
//! A release build (`parlor_release_build` in `scripts/env.sh`) names the JS, wasm and CSS
//! after their content (`parlor.<hash>.wasm`) and writes `hash.txt` into the site root; the
//! site is then self-describing and the server follows it, whatever `LEPTOS_HASH_FILES` says.
//! A dev build (`cargo leptos build`, `cargo leptos watch`) keeps plain names (`parlor.wasm`),
//! which change content under the same name, so browsers must check them again each time.
//! The `.br` and `.gz` copies a release build writes beside each file are served by
//! `leptos_axum`'s static file handler to browsers that accept them.

use std::path::{Path, PathBuf};

/// Where the site's `hash.txt` lives, relative to the site root.
pub const HASH_FILE: &str = "hash.txt";

/// `Cache-Control` for a file whose name carries its content hash: it never changes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` for a bundle file with a plain name (dev builds): it may change under the
/// same name at the next build, so the browser asks for it again every time.
pub const REVALIDATE: &str = "no-cache";

/// The bundle a site root holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    /// The site's `hash.txt` (absolute), when its file names carry hashes.
    pub hash_file: Option<PathBuf>,
    /// The JS module pages load (it loads the wasm): its absence means nothing hydrates.
    pub js: PathBuf,
}

impl Bundle {
    /// Reads `site_root`: hashed names when its `hash.txt` names a JS file that is there,
    /// plain names otherwise (a stale or broken `hash.txt` is reported and ignored).
    pub fn find(site_root: &Path, output_name: &str) -> Self {
        let plain = Self {
            hash_file: None,
            js: site_root.join(format!("pkg/{output_name}.js")),
        };
        let hash_file = site_root.join(HASH_FILE);
        let Ok(hashes) = std::fs::read_to_string(&hash_file) else {
            return plain;
        };
        let js = hashes
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(kind, _)| kind.trim() == "js")
            .map(|(_, hash)| site_root.join(format!("pkg/{output_name}.{}.js", hash.trim())));
        match js {
            Some(js) if js.exists() => Self {
                // Leptos reads it relative to the executable's directory: absolute overrides.
                hash_file: Some(std::path::absolute(&hash_file).unwrap_or(hash_file)),
                js,
            },
            _ => {
                tracing::warn!(
                    file = %hash_file.display(),
                    "ignoring a hash file that names no JS bundle in the site; using plain names"
                );
                plain
            }
        }
    }

    /// Whether the bundle was built without `--split`: its JS then imports the chunk loader
    /// under a placeholder name no browser can load, and no page hydrates.
    pub fn built_without_split(&self) -> bool {
        std::fs::read_to_string(&self.js).is_ok_and(|js| js.contains(SPLIT_PLACEHOLDER))
    }
}

/// The module wasm-bindgen imports the chunk loader from until `--split` gives it its name.
const SPLIT_PLACEHOLDER: &str = "__wasm_split_placeholder__";

/// Whether a file name carries a content hash the way cargo-leptos writes it: a 22-character
/// URL-safe base64 MD5 before the extension (`parlor.7dbhnJQ0QmbqtXoVXDFBzw.wasm`).
pub fn is_hashed(file_name: &str) -> bool {
    let mut parts = file_name.rsplit('.');
    let (Some(_extension), Some(hash), Some(_stem)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    hash.len() == 22
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_told_from_plain_ones() {
        for name in [
            "parlor.7dbhnJQ0QmbqtXoVXDFBzw.wasm",
            "parlor.a-b_cdefghijklmnopqrst.js",
            "__wasm_split.7dbhnJQ0QmbqtXoVXDFBzw.js",
            "split_call_7.7dbhnJQ0QmbqtXoVXDFBzw.wasm",
        ] {
            assert!(is_hashed(name), "{name}");
        }
        for name in [
            "parlor.wasm",
            "parlor.js",
            "7dbhnJQ0QmbqtXoVXDFBzw.wasm",
            "parlor.7dbhnJQ0QmbqtXoVXDFBz.wasm",
            "parlor.7dbhnJQ0QmbqtXoVXDFB+w.wasm",
            "__wasm_split.______________________.js.x",
        ] {
            assert!(!is_hashed(name), "{name}");
        }
    }

    #[test]
    fn a_site_without_hash_file_uses_plain_names() {
        let site = tempfile::tempdir().unwrap();
        let bundle = Bundle::find(site.path(), "parlor");
        assert_eq!(bundle.hash_file, None);
        assert_eq!(bundle.js, site.path().join("pkg/parlor.js"));
    }

    #[test]
    fn a_bundle_built_without_split_is_told() {
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir(site.path().join("pkg")).unwrap();
        let bundle = Bundle::find(site.path(), "parlor");
        assert!(!bundle.built_without_split(), "no bundle at all");
        std::fs::write(&bundle.js, "import * as import1 from \"./__wasm_split.js\"").unwrap();
        assert!(!bundle.built_without_split());
        std::fs::write(
            &bundle.js,
            "import * as import1 from \"__wasm_split_placeholder__\"",
        )
        .unwrap();
        assert!(bundle.built_without_split());
    }

    #[test]
    fn a_hash_file_naming_missing_files_is_ignored() {
        let site = tempfile::tempdir().unwrap();
        std::fs::write(site.path().join(HASH_FILE), "js: AAAAAAAAAAAAAAAAAAAAAA\n").unwrap();
        assert_eq!(Bundle::find(site.path(), "parlor").hash_file, None);
    }

    #[test]
    fn a_hash_file_naming_the_bundle_selects_hashed_names() {
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir(site.path().join("pkg")).unwrap();
        let js = site.path().join("pkg/parlor.AAAAAAAAAAAAAAAAAAAAAA.js");
        std::fs::write(&js, "").unwrap();
        std::fs::write(
            site.path().join(HASH_FILE),
            "js: AAAAAAAAAAAAAAAAAAAAAA\nwasm: BBBBBBBBBBBBBBBBBBBBBB\n",
        )
        .unwrap();
        let bundle = Bundle::find(site.path(), "parlor");
        assert_eq!(bundle.hash_file, Some(site.path().join(HASH_FILE)));
        assert_eq!(bundle.js, js);
    }
}
