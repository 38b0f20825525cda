//! `kaskad serve`: the HTTP API of a home, until SIGTERM or ctrl-c.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use kaskad_serve::{Fallback, ServeConfig};

use crate::cli::ServeArgs;
use crate::home::Home;

pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let home = Home::new(&args.home.home);
    let options = home.options()?;
    // Migrate the catalog (keys, request log) before any request needs it.
    home.catalog()?;
    let mut config = ServeConfig::new(
        home.db_path(),
        options.data.name.clone(),
        options.data.target.clone(),
    );
    config.inbox = options
        .data
        .source
        .is_dir()
        .then(|| options.data.source.clone());
    config.body_limit = args.max_body_bytes;
    config.timeout = Duration::from_millis(args.timeout_ms);
    config.remote_key = args.remote_key.clone();
    config.log_queue = args.log_queue;
    config.log_import_every = seconds(args.log_import_seconds, "--log-import-seconds")?;
    config.log_import_after_pause =
        seconds(args.log_import_pause_seconds, "--log-import-pause-seconds")?;
    config.log_retention = match args.log_retention_days {
        0.0 => None,
        days => Some(
            Duration::try_from_secs_f64(days * 86_400.0)
                .ok()
                .filter(|d| !d.is_zero())
                .with_context(|| {
                    format!("--log-retention-days must be a positive number of days (0 keeps every entry), not {days}")
                })?,
        ),
    };
    config.fallback = (!options.inference.fallback_model.is_empty()).then(|| Fallback {
        model: options.inference.fallback_model.clone(),
        max_missing_share: options.inference.fallback_missing_share,
        range_factor: options.inference.fallback_range_factor,
    });
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let bound = listener.local_addr()?;
        eprintln!(
            "serving {} on http://{bound} (SIGTERM or ctrl-c stops)",
            home.root.display()
        );
        // The address alone on stdout, flushed, so that scripts and tests
        // started with port 0 learn where to connect.
        outln!("{bound}")?;
        std::io::stdout().flush()?;
        kaskad_serve::serve(config, listener, shutdown_signal()).await?;
        eprintln!("stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `value` seconds, which must be positive.
fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} must be a positive number of seconds, not {value}"))
}

/// Completes on ctrl-c or, on Unix, SIGTERM (what `kill` and Kubernetes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
