//! The `api` command line: `serve`, and account administration.

use std::io::Write;
use std::path::PathBuf;

use zeroize::Zeroizing;

use clap::{Args, Parser, Subcommand};
use transaction_store::AccountStatus;

use crate::account_admin::{AccountAdmin, AdminError};
use crate::admin_routes::{AccountResource, AccountWithSecret};
use crate::config::Config;
use crate::startup::secret_hasher;

#[derive(Parser)]
#[command(name = "api", version, about = "Ingest API of the card gateway")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP API.
    Serve(Box<Config>),
    /// Manage merchant accounts directly in the database.
    Accounts(AccountsArgs),
    /// Bring the database schema up to date and exit: the one-off migrate
    /// job of a deployment whose services run with RUN_MIGRATIONS=false.
    Migrate(MigrateArgs),
    /// The CVV's short-lived keyring.
    #[command(subcommand)]
    CvvKeys(CvvKeysCommand),
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The migrator's URL (a user with DDL rights on the schema).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Subcommand)]
pub enum CvvKeysCommand {
    /// One rotation (every 15 minutes): remove the keys made 60 minutes ago
    /// or earlier, seal with the key staged by the previous run, stage a
    /// fresh random key. Reads the current keyring from `--current` (absent
    /// or empty: the first run) and writes the new one to `--out` (mode
    /// 0600); never prints key material.
    Rotate {
        #[arg(long)]
        current: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args)]
pub struct AccountsArgs {
    /// Same database as `serve`.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db", global = true, hide_env_values = true)]
    pub database_url: String,

    /// Must be the key `serve` uses, or the secrets printed here will not verify.
    #[arg(long, env = "SECRET_HASH_KEY", hide_env_values = true, global = true)]
    pub secret_hash_key: Option<String>,

    /// Development mode: allows a missing or published development key.
    #[arg(long, env = "GATEWAY_DEVELOPMENT", global = true)]
    pub development: bool,

    #[command(subcommand)]
    pub command: AccountsCommand,
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Create an account; prints its secret once, as JSON.
    Create {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
    },
    /// List accounts.
    List,
    /// Refuse the account's requests (403) until enabled again.
    Disable {
        #[arg(long)]
        id: String,
    },
    /// Accept the account's requests again.
    Enable {
        #[arg(long)]
        id: String,
    },
    /// Replace the secret; prints the new one once, as JSON. The old one
    /// stops working at once.
    RotateSecret {
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Store(#[from] transaction_store::StoreError),
    #[error(transparent)]
    Key(#[from] transaction_model::WeakSecretKey),
    #[error(transparent)]
    DevelopmentKey(#[from] service_runtime::dev_keys::DevKeyError),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
    #[error("CVV keyring: {0}")]
    Keyring(#[from] card_envelope::KeyringError),
}

/// Runs `migrate`.
pub async fn run_migrate(args: MigrateArgs) -> Result<(), CliError> {
    transaction_store::migrate(&args.database_url).await?;
    tracing::info!(database = %transaction_store::redact_url(&args.database_url), "schema up to date");
    Ok(())
}

/// Runs a `cvv-keys` subcommand, reporting (ids only) to `out`.
pub fn run_cvv_keys(command: CvvKeysCommand, out: &mut impl Write) -> Result<(), CliError> {
    let CvvKeysCommand::Rotate { current, out: target } = command;
    let text = match std::fs::read_to_string(&current) {
        Ok(text) => Zeroizing::new(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Zeroizing::new(String::new()),
        Err(e) => return Err(e.into()),
    };
    let rotated = card_envelope::cvv::rotate(&text, time::OffsetDateTime::now_utc())?;
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    file.open(&target)?.write_all(rotated.as_bytes())?;
    let ids: Vec<&str> = rotated.lines().filter_map(|l| l.split(':').next()).collect();
    writeln!(out, "CVV keyring: {} (the first seals; keys older than 60 minutes removed)", ids.join(" "))?;
    Ok(())
}

/// Runs an `accounts` subcommand, writing its output to `out`.
pub async fn run_accounts(args: AccountsArgs, out: &mut impl Write) -> Result<(), CliError> {
    service_runtime::dev_keys::require("SECRET_HASH_KEY", args.secret_hash_key.as_deref(), args.development)?;
    let hasher = secret_hasher(args.secret_hash_key.as_deref())?;
    let repo = transaction_store::open_accounts(&args.database_url).await?;
    let admin = AccountAdmin { repo, hasher };
    match args.command {
        AccountsCommand::Create { id, name } => {
            let created = admin.create(&id, &name).await?;
            print_json(out, &AccountWithSecret::from(created))?;
        }
        AccountsCommand::List => {
            writeln!(out, "{:<32} {:<9} {:<28} NAME", "ID", "STATUS", "CREATED")?;
            for a in admin.list().await? {
                let r = AccountResource::from(&a);
                writeln!(out, "{:<32} {:<9} {:<28} {}", r.id, r.status, r.created_at, r.name)?;
            }
        }
        AccountsCommand::Disable { id } => {
            let a = admin.set_status(&id, AccountStatus::Disabled).await?;
            print_json(out, &AccountResource::from(&a))?;
        }
        AccountsCommand::Enable { id } => {
            let a = admin.set_status(&id, AccountStatus::Active).await?;
            print_json(out, &AccountResource::from(&a))?;
        }
        AccountsCommand::RotateSecret { id } => {
            let rotated = admin.rotate_secret(&id).await?;
            print_json(out, &AccountWithSecret::from(rotated))?;
        }
    }
    Ok(())
}

fn print_json<T: serde::Serialize>(out: &mut impl Write, value: &T) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}
