//! Creates merchant accounts for trying the dashboard out (and for its
//! browser test), through the account store the API uses.
//!
//!   SECRET_HASH_KEY=… cargo run -p dashboard --example seed_accounts -- \
//!       --database-url sqlite://gateway.db shop-a:secret-a shop-b:secret-b

use clap::Parser;
use transaction_model::secret::SecretHasher;
use transaction_model::AccountId;
use transaction_store::{Account, AccountStatus, StoreError};

#[derive(Parser)]
struct Args {
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://gateway.db")]
    database_url: String,
    #[arg(long, env = "SECRET_HASH_KEY", hide_env_values = true)]
    secret_hash_key: String,
    /// `account_id:secret` pairs.
    accounts: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let hasher = SecretHasher::new(args.secret_hash_key.as_bytes())?;
    let repo = transaction_store::open_accounts(&args.database_url).await?;
    for pair in &args.accounts {
        let (id, secret) = pair.split_once(':').ok_or_else(|| anyhow::anyhow!("{pair:?} is not id:secret"))?;
        let account = Account {
            id: AccountId::try_from(id)?,
            name: format!("Merchant {id}"),
            status: AccountStatus::Active,
            secret_hash: hasher.hash(secret),
            created_at: time::OffsetDateTime::now_utc(),
        };
        match repo.create_account(&account).await {
            Ok(()) => println!("created {id}"),
            Err(StoreError::AlreadyExists(_)) => {
                repo.rotate_secret(&account.id, &account.secret_hash).await?;
                repo.set_account_status(&account.id, AccountStatus::Active).await?;
                println!("{id} existed: secret replaced, account active");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
