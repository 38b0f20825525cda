//! `kaskad keys`: API keys for `kaskad serve` — made, listed, revoked.

use std::process::ExitCode;

use kaskad_registry::Role;

use crate::cli::{KeysCreateArgs, KeysRevokeArgs, ListArgs};
use crate::home::Home;

pub fn create(args: &KeysCreateArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let role: Role = args.role.parse()?;
    let key = kaskad_serve::new_key()?;
    let id = home.catalog()?.create_key(&key.hash, role)?;
    eprintln!(
        "created key {id} with role {}; it is shown only now (the catalog keeps its hash)",
        role.as_str()
    );
    outln!("{}", key.key)?;
    Ok(ExitCode::SUCCESS)
}

pub fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let keys = home.catalog()?.keys()?;
    if args.json {
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "id": k.id, "role": k.role, "created_at": k.created_at, "revoked_at": k.revoked_at,
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&keys)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{:>4}  {:<7} {:<20}  revoked", "id", "role", "created")?;
    for k in &keys {
        outln!(
            "{:>4}  {:<7} {:<20}  {}",
            k.id,
            k.role.as_str(),
            k.created_at,
            k.revoked_at.as_deref().unwrap_or("-")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn revoke(args: &KeysRevokeArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    if !home.catalog()?.revoke_key(args.id)? {
        anyhow::bail!(
            "no key {} in {} (`kaskad keys list` shows them)",
            args.id,
            home.root.display()
        );
    }
    eprintln!("key {} is revoked", args.id);
    Ok(ExitCode::SUCCESS)
}
