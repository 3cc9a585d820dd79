//! Headless Chromium (Debian's `chromium`) for the page tests: the DOM after scripts ran,
//! or a screenshot.

use std::process::Command;

fn chromium() -> &'static str {
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {c}"))
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return c;
        }
    }
    panic!("Chromium is needed for this test: `apt-get install chromium` (scripts/test.sh installs it)");
}

/// Runs headless Chromium with `args` (e.g. `--dump-dom URL`, `--screenshot=F URL`) in a
/// window of `size` (`1280,900`), letting scripts run for `budget_ms` of virtual time;
/// returns its stdout.
pub fn headless(size: &str, budget_ms: u32, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}
