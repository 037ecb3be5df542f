//! First-start data: the first admin account, and the demo data set for `run --demo`.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use fleet_domain::Role;
use fleet_storage::Store;

use fleet_sim::demo;

/// Password of every demo account.
pub const DEMO_PASSWORD: &str = "demo";

/// How the admin account came to be, for the start-up message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminBootstrap {
    /// Users existed already: nothing done.
    Existing,
    /// Created with the configured (or demo) password.
    Created,
    /// Created with a generated password, to be shown once.
    Generated(String),
}

/// On an empty user table, creates `admin` with the given password, or `demo` in demo mode,
/// or a generated one.
pub async fn ensure_admin(store: &Store, password: Option<&str>, demo: bool) -> anyhow::Result<AdminBootstrap> {
    if store.users().count().await? > 0 {
        return Ok(AdminBootstrap::Existing);
    }
    let (password, outcome) = match (password, demo) {
        (Some(p), _) => {
            fleet_domain::user::validate_new_password(p, "admin", None)
                .map_err(|e| anyhow::anyhow!("FLEET_ADMIN_PASSWORD: {e}"))?;
            (p.to_owned(), AdminBootstrap::Created)
        }
        (None, true) => (DEMO_PASSWORD.to_owned(), AdminBootstrap::Created),
        (None, false) => {
            let p = random_password();
            (p.clone(), AdminBootstrap::Generated(p))
        }
    };
    let hash = fleet_web::hash_password(&password);
    store.users().create("admin", &hash, Role::Admin, None, None).await.context("creating the admin user")?;
    Ok(outcome)
}

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Days of history the demo starts with.
pub const DEMO_HISTORY_DAYS: u32 = 30;
/// Sample spacing of the demo history.
pub const DEMO_HISTORY_STEP: Duration = Duration::from_secs(30);

/// Loads the demo data set into an empty database (no units yet): units, vehicles,
/// drivers, users (password `demo`), charging stations and a month of telemetry.
/// Returns false when the database already held data.
pub async fn seed_demo(store: &Store) -> anyhow::Result<bool> {
    if store.units().count().await? > 0 {
        return Ok(false);
    }
    let data = demo::demo_data();
    for u in &data.units {
        let id = u.id.clone().context("demo units carry ids")?;
        store.units().create(&id, u).await.with_context(|| format!("demo unit {id}"))?;
    }
    for v in &data.vehicles {
        let vin = v.validate().map_err(|e| anyhow::anyhow!("demo vehicle {}: {e}", v.vin))?;
        store.vehicles().create(&vin, v).await.with_context(|| format!("demo vehicle {}", v.vin))?;
    }
    for d in &data.drivers {
        let vin = d.validate().map_err(|e| anyhow::anyhow!("demo driver {}: {e}", d.name))?;
        let id = d.id.clone().context("demo drivers carry ids")?;
        store.drivers().create(&id, d, vin.as_ref()).await.with_context(|| format!("demo driver {id}"))?;
    }
    // One hash for every demo account: they share the password, and argon2 is slow on purpose.
    let hash = fleet_web::hash_password(DEMO_PASSWORD);
    for u in &data.users {
        if u.username == "admin" && store.users().credentials("admin").await?.is_some() {
            continue;
        }
        store
            .users()
            .create(&u.username, &hash, u.role, u.unit_id.as_deref(), u.driver_id.as_deref())
            .await
            .with_context(|| format!("demo user {}", u.username))?;
    }
    for s in &data.charging_stations {
        store.charging_stations().create(s).await?;
    }
    // A time-of-use tariff before the history is derived, so its charges are costed; a month
    // of tolls, parking and repairs beside them.
    store.settings().put_tariff(&demo::tariff()).await.context("demo tariff")?;
    let today = Utc::now().with_timezone(&fleet_domain::trips::china_offset()).date_naive();
    let costs: Vec<_> = demo::costs(&data.vehicles, today)
        .into_iter()
        .map(|c| c.validate(today).map(|vin| (vin, c)))
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("demo cost: {e}"))?;
    store.costs().create(&costs).await.context("demo costs")?;
    // The history comes car by car: each car's samples are stored, then the orders its
    // working-hours trips served.
    let cast = demo::Cast::new(&data.units, &data.vehicles, &data.drivers, &data.users);
    let battery: std::collections::HashMap<&str, f64> =
        data.vehicles.iter().map(|v| (v.vin.as_str(), v.battery_kwh)).collect();
    let index: std::collections::HashMap<&str, usize> =
        data.vehicles.iter().enumerate().map(|(i, v)| (v.vin.as_str(), i)).collect();
    let (mut car, mut total, mut orders, mut seq) = (Vec::new(), 0usize, Vec::new(), 0u64);
    let mut history = demo::history(&data.vehicles, Utc::now(), DEMO_HISTORY_DAYS, DEMO_HISTORY_STEP, 2026).peekable();
    while let Some(sample) = history.next() {
        let last_of_car = history.peek().is_none_or(|next| next.vin != sample.vin);
        car.push(sample);
        if last_of_car {
            for chunk in car.chunks(5000) {
                store.telemetry().commit(chunk, &[]).await.context("demo history")?;
            }
            total += car.len();
            let kwh = battery.get(car[0].vin.as_str()).copied().unwrap_or(60.0);
            orders.extend(demo::orders_for(&cast, &car, kwh, &mut seq));
            // The car's file.
            if let Some(&i) = index.get(car[0].vin.as_str()) {
                let mut v = data.vehicles[i].clone();
                v.file = demo::vehicle_file(i, today);
                store.vehicles().update(&car[0].vin, &v).await.context("demo vehicle file")?;
            }
            car.clear();
        }
    }
    store.orders().insert_history(&orders).await.context("demo orders")?;
    tracing::info!(
        demo.units = data.units.len(),
        demo.vehicles = data.vehicles.len(),
        demo.samples = total,
        demo.orders = orders.len(),
        "demo data loaded"
    );
    Ok(true)
}

/// Issues each of `vins` a fresh MQTT secret, as `POST /api/v1/vehicles/{vin}/mqtt-secret`
/// does (the stored line replaces any earlier one), and answers the secrets by VIN.
pub async fn issue_mqtt_secrets(
    store: &Store,
    vins: &[fleet_domain::Vin],
) -> anyhow::Result<std::collections::HashMap<fleet_domain::Vin, String>> {
    let mut secrets = std::collections::HashMap::with_capacity(vins.len());
    for vin in vins {
        let secret = fleet_web::new_vehicle_secret();
        let line = fleet_web::mosquitto_password_line(vin.as_str(), &secret);
        store
            .mqtt_secrets()
            .replace(vin, &line, Utc::now())
            .await
            .with_context(|| format!("storing the MQTT account of {vin}"))?;
        secrets.insert(vin.clone(), secret);
    }
    Ok(secrets)
}
