//! Obtaining one certificate: the account (made once, then reused), an
//! order for the names, the challenges answered, the key and its signing
//! request, the chain saved.

use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, Order,
    OrderStatus, RetryPolicy,
};
use rustls::crypto::CryptoProvider;
use tracing::info;

use super::files::{Ordered, SavedAccount};
use super::Acme;
use crate::config::AcmeChallenge;
use crate::tls::challenges::tls_alpn_certificate;

/// How the order is polled while the CA validates and issues.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(500))
    .backoff(1.5)
    .timeout(Duration::from_secs(120));

/// Obtain a certificate for the configured names, proving control of them
/// with `challenge`, and save it. The challenges' answers are left for
/// the caller to clear.
pub(super) async fn obtain(
    acme: &Acme,
    challenge: AcmeChallenge,
    provider: &CryptoProvider,
) -> anyhow::Result<()> {
    let saved = account(acme, false).await?;
    let result = order(acme, &saved, challenge, provider).await;
    match result {
        // The CA forgot the account (a test CA restarted, a private CA's
        // database reset): register again, once.
        Err(e) if account_unknown(&e) => {
            info!(
                "ACME: {} no longer knows the account; registering again",
                acme.settings.directory
            );
            let fresh = account(acme, true).await?;
            order(acme, &fresh, challenge, provider).await
        }
        other => other,
    }
}

/// The saved account at the configured directory, or a new one.
async fn account(acme: &Acme, fresh: bool) -> anyhow::Result<Account> {
    let settings = &acme.settings;
    let builder = || Account::builder_with_http(Box::new(acme.https.clone()));
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    if let Some(saved) = acme.files.account(&settings.directory).filter(|_| !fresh) {
        let email = saved.email.clone();
        let account = builder()
            .from_credentials(saved.credentials)
            .await
            .with_context(|| format!("cannot reach the ACME directory {}", settings.directory))?;
        if email != settings.email {
            account
                .update_contacts(&contacts)
                .await
                .context("cannot change the account's contact address")?;
            // The key and URL stay: only the address saved with them changes.
            if let Some(mut saved) = acme.files.account(&settings.directory) {
                saved.email = settings.email.clone();
                acme.files.save_account(&saved)?;
            }
        }
        return Ok(account);
    }
    let (account, credentials) = builder()
        .create(
            &NewAccount {
                contact: &contacts,
                // Configuring TLS acme is agreeing to the CA's terms (see
                // README.md).
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            None,
        )
        .await
        .with_context(|| format!("cannot register an account at {}", settings.directory))?;
    save_account(acme, credentials)?;
    info!("ACME: registered an account at {}", settings.directory);
    Ok(account)
}

fn save_account(acme: &Acme, credentials: instant_acme::AccountCredentials) -> anyhow::Result<()> {
    acme.files.save_account(&SavedAccount {
        directory: acme.settings.directory.clone(),
        email: acme.settings.email.clone(),
        credentials,
    })?;
    Ok(())
}

fn account_unknown(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<instant_acme::Error>(),
            Some(instant_acme::Error::Api(problem))
                if problem.r#type.as_deref().is_some_and(|t| t.ends_with(":accountDoesNotExist"))
        )
    })
}

async fn order(
    acme: &Acme,
    account: &Account,
    challenge: AcmeChallenge,
    provider: &CryptoProvider,
) -> anyhow::Result<()> {
    let settings = &acme.settings;
    let identifiers: Vec<Identifier> = settings
        .names
        .iter()
        .map(|name| Identifier::Dns(name.clone()))
        .collect();
    let mut order = account
        .new_order(&NewOrder::new(&identifiers))
        .await
        .context("the CA refused the order")?;
    answer_challenges(acme, &mut order, challenge, provider).await?;
    let ready = order.poll_ready(&POLL).await;
    match ready {
        Ok(OrderStatus::Ready) => {}
        Ok(status) => bail!(
            "{challenge} validation failed ({status:?}): {}",
            why_invalid(&mut order).await
        ),
        Err(e) => bail!(
            "{challenge} validation failed: {e}: {}",
            why_invalid(&mut order).await
        ),
    }
    let key = rcgen::KeyPair::generate().context("cannot make a key")?;
    let mut params = rcgen::CertificateParams::new(settings.names.clone())
        .context("cannot make the signing request")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .context("cannot make the signing request")?;
    order
        .finalize_csr(csr.der())
        .await
        .context("the CA refused the signing request")?;
    let chain = order
        .poll_certificate(&POLL)
        .await
        .context("the CA did not issue the certificate")?;
    acme.files.save_certificate(
        &chain,
        &key.serialize_pem(),
        &Ordered {
            directory: settings.directory.clone(),
            names: settings.names.clone(),
        },
    )?;
    Ok(())
}

/// Set up the answer to each pending authorization's challenge and tell
/// the CA to check it.
async fn answer_challenges(
    acme: &Acme,
    order: &mut Order,
    kind: AcmeChallenge,
    provider: &CryptoProvider,
) -> anyhow::Result<()> {
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.context("cannot read an authorization")?;
        let name = authorization.identifier().to_string();
        match authorization.status {
            AuthorizationStatus::Pending => {}
            // Validated recently for this account: nothing to prove.
            AuthorizationStatus::Valid => continue,
            status => bail!("the authorization for {name} is {status:?}"),
        }
        let mut challenge = authorization
            .challenge(challenge_type(kind))
            .ok_or_else(|| anyhow!("the CA offers no {kind} challenge for {name}"))?;
        let key_authorization = challenge.key_authorization();
        match kind {
            AcmeChallenge::Http01 => acme
                .challenges
                .add_http(&challenge.token, key_authorization.as_str()),
            _ => {
                let digest = key_authorization.digest();
                let certificate = tls_alpn_certificate(&name, digest.as_ref(), provider)
                    .map_err(|e| anyhow!(e))?;
                acme.challenges.add_tls_alpn(&name, certificate);
            }
        }
        challenge
            .set_ready()
            .await
            .with_context(|| format!("the CA refused to check {kind} for {name}"))?;
    }
    Ok(())
}

fn challenge_type(kind: AcmeChallenge) -> ChallengeType {
    match kind {
        AcmeChallenge::Http01 => ChallengeType::Http01,
        _ => ChallengeType::TlsAlpn01,
    }
}

/// What the CA said about each failed challenge.
async fn why_invalid(order: &mut Order) -> String {
    let mut reasons = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        if authorization.refresh().await.is_err() {
            continue;
        }
        let name = authorization.identifier().to_string();
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                let detail = problem.detail.as_deref().unwrap_or("no detail");
                reasons.push(format!("{name}: {detail}"));
            }
        }
    }
    if reasons.is_empty() {
        "the CA gave no reason".into()
    } else {
        reasons.join("; ")
    }
}
