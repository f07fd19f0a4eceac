//! `storefront [serve]`, `storefront migrate`, `storefront create-admin --email E`.

use std::io::BufRead as _;
use std::process::ExitCode;

use storefront::config::{Secret, Settings, admin_password_from_env};
use storefront::domain::{Email, Password};
use storefront::error::Error;
use storefront::{AppState, Application, store, telemetry};

/// mimalloc rather than glibc's malloc: SurrealDB's executor allocates and frees values on every
/// query, and under that load glibc kept 2.6 times the resident memory (scripts/memory, BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage:
  storefront [serve]                 serve the API (configured by environment variables; see README);
                                     with STOREFRONT_ADMIN_EMAIL set, make that account an admin first
  storefront migrate                 apply schema/ to the database and exit
  storefront seed                    load the starter catalog (seed/); running it twice changes nothing
  storefront create-admin --email E  make E an admin (a new account takes its password from
                                     STOREFRONT_ADMIN_PASSWORD or the first line of standard input)
  storefront --version               print the version and exit";

enum Command {
    Version,
    Serve,
    Migrate,
    Seed,
    CreateAdmin { email: String },
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    match args {
        [] => Ok(Command::Serve),
        [cmd] if cmd == "--version" || cmd == "-V" || cmd == "version" => Ok(Command::Version),
        [cmd] if cmd == "serve" => Ok(Command::Serve),
        [cmd] if cmd == "migrate" => Ok(Command::Migrate),
        [cmd] if cmd == "seed" => Ok(Command::Seed),
        [cmd, flag, email] if cmd == "create-admin" && flag == "--email" => {
            Ok(Command::CreateAdmin {
                email: email.clone(),
            })
        }
        [cmd, flag] if cmd == "create-admin" && flag.starts_with("--email=") => {
            Ok(Command::CreateAdmin {
                email: flag.trim_start_matches("--email=").to_string(),
            })
        }
        [cmd, ..] if cmd == "-h" || cmd == "--help" || cmd == "help" => Err(String::new()),
        _ => Err(format!("unknown arguments: {}", args.join(" "))),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match parse_args(&args) {
        Ok(command) => command,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("{message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    if let Command::Version = command {
        println!("storefront {}", storefront::VERSION);
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("configuration error: {err}");
            return ExitCode::from(78); // EX_CONFIG
        }
    };
    telemetry::init(settings.log_format, &settings.log_filter);
    let result = match command {
        Command::Version => Ok(()),
        Command::Serve => serve(settings).await,
        Command::Migrate => migrate(settings).await,
        Command::Seed => seed(settings).await,
        Command::CreateAdmin { email } => create_admin(settings, &email).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let shutdown = storefront::app::shutdown_signal()?;
    let admin_email = settings.admin_email.clone();
    let app = Application::build(settings).await?;
    if let Some(email) = admin_email {
        // The password comes from STOREFRONT_ADMIN_PASSWORD only: a server reads no terminal.
        let password = || match admin_password_from_env() {
            Some(secret) => Ok(Password::parse(
                "STOREFRONT_ADMIN_PASSWORD",
                secret.expose().to_string(),
            )?),
            None => Err(Error::validation(
                "STOREFRONT_ADMIN_PASSWORD",
                "is needed to create the admin named by STOREFRONT_ADMIN_EMAIL",
            )),
        };
        let (account, created) = app.state().accounts.create_admin(&email, password).await?;
        tracing::info!(admin = %account.email, created, "STOREFRONT_ADMIN_EMAIL is an admin");
    }
    app.run_until(shutdown).await?;
    Ok(())
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let store = store::Store::connect(&settings.surreal, Default::default()).await?;
    let migrated = store::migrate(&store).await?;
    println!(
        "applied {} schema file(s) and data step(s): {}",
        migrated.applied.len(),
        migrated.applied.join(", ")
    );
    if !migrated.email_reviews.is_empty() {
        println!(
            "{} email(s) left as stored, to settle by hand (also in table email_review):",
            migrated.email_reviews.len()
        );
        for review in &migrated.email_reviews {
            let users: Vec<String> = review
                .users
                .iter()
                .map(|(id, email)| format!("user {id} <{email}>"))
                .collect();
            println!(
                "  {} {}: {}",
                review.kind.as_str(),
                review.normalized.as_deref().unwrap_or("(no normal form)"),
                users.join(", ")
            );
        }
    }
    Ok(())
}

async fn seed(mut settings: Settings) -> anyhow::Result<()> {
    // Seed exactly once, here, whatever SEED_CATALOG says.
    settings.seed_catalog = false;
    let state = AppState::build(settings).await?;
    let added = state.catalog.seed().await?;
    println!("starter catalog: {added} product(s) added");
    Ok(())
}

async fn create_admin(settings: Settings, email: &str) -> anyhow::Result<()> {
    let email = Email::parse(email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let state = AppState::build(settings).await?;
    let password = || -> Result<Password, Error> {
        let secret = match admin_password_from_env() {
            Some(secret) => secret,
            None => {
                eprintln!("password for the new admin (one line on standard input):");
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(|e| Error::Internal(e.into()))?;
                Secret::new(line.trim_end_matches(['\r', '\n']))
            }
        };
        Ok(Password::parse("password", secret.expose().to_string())?)
    };
    let (account, created) = state.accounts.create_admin(&email, password).await?;
    if created {
        println!("created admin {} ({})", account.email, account.id);
    } else {
        println!("promoted {} ({}) to admin", account.email, account.id);
    }
    Ok(())
}
