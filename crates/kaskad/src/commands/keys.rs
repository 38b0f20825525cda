//! `kaskad keys create`: a new API key for `kaskad serve`.

use std::process::ExitCode;

use kaskad_registry::Role;

use crate::cli::KeysCreateArgs;
use crate::home::Home;

pub fn create(args: &KeysCreateArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    home.options()?;
    let role: Role = args.role.parse()?;
    let key = kaskad_serve::new_key()?;
    home.catalog()?.create_key(&key.hash, role)?;
    eprintln!(
        "created a key with role {}; it is shown only now (the catalog keeps its hash)",
        role.as_str()
    );
    outln!("{}", key.key)?;
    Ok(ExitCode::SUCCESS)
}
