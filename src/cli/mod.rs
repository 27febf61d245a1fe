//! The administrative commands: `authd migrate`, `authd user ...` and `authd keys ...`, on
//! the same database settings as the server.
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};
use authd::auth;
use authd::auth::PasswordPolicy;
use authd::config::DatabaseArgs;
use authd::keys;
use authd::password::Hasher;
use authd::store::Store;
use chrono::Utc;
use secrecy::SecretString;

pub mod commands;

use authd::auth::admin::UserRef;
use authd::auth::service_accounts as accounts;
use commands::{
    ClientCommand, HealthcheckArgs, KeysCommand, NewPasswordArgs, RoleCommand, TlsCommand,
    UserCommand,
};

pub async fn migrate(db: DatabaseArgs) -> anyhow::Result<ExitCode> {
    let store = Store::connect(&database_url(&db)?)
        .await
        .context("cannot open the database")?;
    store.migrate().await.context("migration failed")?;
    println!("database is up to date");
    Ok(ExitCode::SUCCESS)
}

async fn open(db: &DatabaseArgs) -> anyhow::Result<Store> {
    Store::connect_and_migrate(&database_url(db)?)
        .await
        .context("cannot open the database")
}

/// The database URL, read from AUTHD_DATABASE_URL_FILE if given; warnings about secrets
/// others can read go to standard error.
fn database_url(db: &DatabaseArgs) -> anyhow::Result<SecretString> {
    let mut db = db.clone();
    for warning in db.load_secrets()? {
        eprintln!("warning: {warning}");
    }
    Ok(db.database_url)
}

pub async fn user(cmd: UserCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        UserCommand::Add { name, new, roles } => {
            let (store, hasher, policy, password) = new_password(&new).await?;
            let id = auth::create_user(&store, &hasher, &policy, &name, password, roles)
                .await
                .map_err(with_reason)?;
            println!("{id}");
        }
        UserCommand::SetPassword { name, new } => {
            let (store, hasher, policy, password) = new_password(&new).await?;
            let who = UserRef::Name(name);
            let (user, ended) =
                auth::admin::set_password(&store, &hasher, &policy, &who, password, None)
                    .await
                    .map_err(with_reason)?;
            println!(
                "password of {} set; ended {ended} session(s)",
                user.username
            );
        }
        UserCommand::Role(cmd) => role(cmd).await?,
        UserCommand::Disable { name, db } => set_disabled(&db, &name, true).await?,
        UserCommand::Enable { name, db } => set_disabled(&db, &name, false).await?,
        UserCommand::List { db } => {
            let store = open(&db).await?;
            println!("{:<36}  {:<8}  {:<25}  USERNAME", "ID", "STATE", "CREATED");
            for u in store.list_users().await? {
                let state = if u.disabled { "disabled" } else { "enabled" };
                println!(
                    "{:<36}  {:<8}  {:<25}  {}",
                    u.id,
                    state,
                    u.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    u.username
                );
            }
        }
        UserCommand::RevokeSessions { name, db } => {
            let store = open(&db).await?;
            match auth::revoke_user_sessions(&store, &UserRef::Name(name.clone())).await? {
                Some((user, n)) => println!("revoked {n} session(s) of {}", user.username),
                None => bail!("no user named {:?}", name.trim()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn keys(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Rotate {
            activate_after,
            db,
            schedule,
            key_encryption,
            jwt_secret,
            jwt_secret_file,
            signing_key_file,
        } => {
            let kek = key_encryption.load()?;
            let store = open(&db).await?;
            let after = chrono::Duration::from_std(activate_after)
                .context("--activate-after is too large")?;
            let activates_at = Utc::now()
                .checked_add_signed(after)
                .context("--activate-after is too large")?;
            let kid = keys::rotate(&store, activates_at, kek.as_ref()).await?;
            println!(
                "added Ed25519 key {kid}, signing from {}",
                activates_at.format("%Y-%m-%dT%H:%M:%SZ")
            );
            println!(
                "running servers publish it within AUTHD_KEY_REFRESH (here {})",
                humantime::format_duration(schedule.key_refresh)
            );
            if activate_after < schedule.key_refresh {
                eprintln!(
                    "note: a server that has not reloaded its keys yet refuses tokens signed \
                     with the new key; an --activate-after of at least AUTHD_KEY_REFRESH avoids that"
                );
            }
            if jwt_secret.is_some() || jwt_secret_file.is_some() || signing_key_file.is_some() {
                eprintln!(
                    "note: AUTHD_JWT_SECRET(_FILE) or AUTHD_SIGNING_KEY_FILE is set: servers started \
                     with it sign with that key and ignore the database keys"
                );
            }
        }
        KeysCommand::Rewrap {
            new_key_encryption_key_file,
            db,
            key_encryption,
        } => {
            let current = key_encryption.load()?;
            let new = keys::KeyEncryptionKey::from_file(
                &new_key_encryption_key_file,
                "--new-key-encryption-key-file",
            )?;
            let store = open(&db).await?;
            let kids = keys::rewrap(&store, current.as_ref(), &new).await?;
            println!(
                "sealed {} signing key(s) with key-encryption key {}: {}",
                kids.len(),
                new.id(),
                kids.join(", ")
            );
            println!(
                "restart the servers with AUTHD_KEY_ENCRYPTION_KEY_FILE set to the new file; \
                 they refuse to start with the old one"
            );
        }
        KeysCommand::List { db, schedule } => {
            let store = open(&db).await?;
            let rows = store.signing_keys().await?;
            let grace = keys::retire_grace(schedule.access_ttl, schedule.key_refresh);
            let states = keys::key_states(&rows, Utc::now(), grace);
            println!(
                "{:<43}  {:<9}  {:<20}  {:<20}  {:<8}  SEALED WITH",
                "KID", "ALGORITHM", "CREATED", "ACTIVATES", "STATE"
            );
            for (k, state) in rows.iter().zip(states) {
                println!(
                    "{:<43}  {:<9}  {:<20}  {:<20}  {:<8}  {}",
                    k.kid,
                    k.algorithm,
                    k.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    keys::activation(k).format("%Y-%m-%dT%H:%M:%SZ"),
                    state.to_string(),
                    // The key-encryption key's id, or "-" for a key stored in the clear.
                    k.kek_id.as_deref().unwrap_or("-"),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What setting a password from the command line needs: the settings checked, the
/// database, the hasher and policy, and the password read from stdin or a prompt.
async fn new_password(
    args: &NewPasswordArgs,
) -> anyhow::Result<(Store, Hasher, PasswordPolicy, String)> {
    args.hashing.validate()?;
    args.password.validate()?;
    let policy = args.password.policy(&args.issuer);
    let store = open(&args.db).await?;
    let typed = read_password()?;
    Ok((store, args.hashing.hasher()?, policy, typed))
}

/// A use case's refusal with its stable reason, for scripts: as the API's ErrorInfo.
fn with_reason(e: auth::AuthError) -> anyhow::Error {
    match e.reason() {
        Some(reason) => anyhow::anyhow!("{e} [{reason}]"),
        None => anyhow::Error::new(e),
    }
}

async fn role(cmd: RoleCommand) -> anyhow::Result<()> {
    let (name, db) = match &cmd {
        RoleCommand::Add { name, db, .. }
        | RoleCommand::Remove { name, db, .. }
        | RoleCommand::List { name, db } => (name.clone(), db.clone()),
    };
    let store = open(&db).await?;
    let who = UserRef::Name(name);
    let user = match cmd {
        RoleCommand::Add { roles, .. } => auth::admin::change_roles(&store, &who, true, roles)
            .await
            .map_err(with_reason)?,
        RoleCommand::Remove { roles, .. } => auth::admin::change_roles(&store, &who, false, roles)
            .await
            .map_err(with_reason)?,
        RoleCommand::List { .. } => {
            let user = auth::admin::get_user(&store, &who)
                .await
                .map_err(with_reason)?;
            for r in auth::roles::from_stored(&user.roles) {
                println!("{r}");
            }
            return Ok(());
        }
    };
    println!(
        "roles of {}: {} (new tokens carry them from the next login or refresh; `authd user \
         revoke-sessions` makes it immediate)",
        user.username,
        auth::roles::from_stored(&user.roles).join(" ")
    );
    Ok(())
}

pub async fn client(cmd: ClientCommand) -> anyhow::Result<ExitCode> {
    let print_secret = |s: &accounts::NewSecret| {
        println!("client_id:     {}", s.account.client_id);
        println!("client_secret: {}", s.secret);
        eprintln!("the secret is shown this once: authd keeps only a keyed hash of it");
    };
    match cmd {
        ClientCommand::Add { name, roles, db } => {
            let store = open(&db).await?;
            let s = accounts::create_service_account(&store, &name, roles)
                .await
                .map_err(with_reason)?;
            print_secret(&s);
        }
        ClientCommand::List { db } => {
            let store = open(&db).await?;
            println!(
                "{:<36}  {:<8}  {:<20}  {:<24}  ROLES",
                "CLIENT ID", "STATE", "CREATED", "NAME"
            );
            let mut token = String::new();
            loop {
                let (page, next) = accounts::list_service_accounts(&store, 1000, &token)
                    .await
                    .map_err(with_reason)?;
                for a in page {
                    println!(
                        "{:<36}  {:<8}  {:<20}  {:<24}  {}",
                        a.client_id,
                        if a.disabled { "disabled" } else { "enabled" },
                        a.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                        a.name,
                        auth::roles::from_stored(&a.roles).join(" ")
                    );
                }
                if next.is_empty() {
                    break;
                }
                token = next;
            }
        }
        ClientCommand::RotateSecret {
            client,
            overlap,
            db,
        } => {
            let store = open(&db).await?;
            let s = accounts::rotate_service_account_secret(&store, &client, overlap)
                .await
                .map_err(with_reason)?;
            print_secret(&s);
            eprintln!(
                "the previous secret keeps working for {}",
                humantime::format_duration(overlap)
            );
        }
        ClientCommand::Disable { client, db } => set_client_disabled(&db, &client, true).await?,
        ClientCommand::Enable { client, db } => set_client_disabled(&db, &client, false).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_client_disabled(
    db: &DatabaseArgs,
    client: &str,
    disabled: bool,
) -> anyhow::Result<()> {
    let store = open(db).await?;
    let a = accounts::set_service_account_disabled(&store, client, disabled)
        .await
        .map_err(with_reason)?;
    if disabled {
        println!(
            "disabled {} (running servers refuse its tokens within AUTHD_REVOCATION_REFRESH)",
            a.name
        );
    } else {
        println!("enabled {}", a.name);
    }
    Ok(())
}

async fn set_disabled(db: &DatabaseArgs, name: &str, disabled: bool) -> anyhow::Result<()> {
    let store = open(db).await?;
    match auth::set_user_disabled(&store, &UserRef::Name(name.to_owned()), disabled).await? {
        Some((user, ended)) if disabled => println!(
            "disabled {} and ended {ended} session(s) (running servers refuse their tokens \
             within AUTHD_REVOCATION_REFRESH)",
            user.username
        ),
        Some((user, _)) => println!(
            "enabled {} (they can log in again; their old sessions stay ended)",
            user.username
        ),
        None => bail!("no user named {:?}", name.trim()),
    }
    Ok(())
}

/// A password from a hidden prompt on a terminal, else the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password (again): ")?;
        if first != again {
            bail!("the passwords do not match");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        bail!("no password on standard input");
    }
    Ok(password)
}

pub async fn healthcheck(args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let url = args.url();
    let tls = authd::healthcheck::TlsFiles {
        ca: args.tls_ca.clone(),
        cert: args.tls_cert.clone(),
        key: args.tls_key.clone(),
    }
    .client_config();
    let result = match tls {
        Ok(tls) => authd::healthcheck::check(&url, &args.service, args.timeout, tls).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => {
            println!("{url}: SERVING");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("unhealthy: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn tls(cmd: TlsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TlsCommand::SelfSigned {
            out,
            names,
            keep_existing,
        } => {
            if keep_existing && authd::tls::existing_set(&out)? {
                println!("kept the certificates already in {}", out.display());
                return Ok(ExitCode::SUCCESS);
            }
            let files = authd::tls::self_signed(&names)?;
            files.write(&out)?;
            println!(
                "wrote ca.pem, server.pem, server.key (for {}), client.pem and client.key to {}",
                names.join(", "),
                out.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
