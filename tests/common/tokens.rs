//! Signed subscribe tokens minted by another language's JWT library (Node's
//! jsonwebtoken, tests/browser/lib/mint.mjs), as an application would.

use serde_json::{json, Value};

/// Run the token minter with `ask` (claims and key, or a key pair to make).
pub fn node_mint(ask: &Value) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/lib/mint.mjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(ask.to_string())
        .output()
        .unwrap_or_else(|e| panic!("these tests mint tokens with Node (node {script}): {e}"));
    assert!(
        out.status.success(),
        "minting failed (run `npm ci` in tests/browser): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// These claims, with `exp` `secs` from now, signed (HS256) with `secret`.
pub fn signed(secret: &str, mut claims: Value, secs: u64) -> String {
    claims["exp"] = json!(meteord::hub::unix_now() + secs);
    node_mint(&json!({ "claims": claims, "secret": secret }))
}
