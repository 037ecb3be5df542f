use super::*;

/// The memory a varying load used to pin (see `shapes`): every batch size from 1 to 300
/// is committed on one connection, and the connection's statement cache stays small.
#[tokio::test]
async fn commits_of_every_batch_size_reuse_a_few_prepared_statements() {
    use sqlx::Connection as _;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    let path = std::env::temp_dir().join(format!("fleet-storage-shapes-{}.db", std::process::id()));
    let remove = || {
        for x in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{x}", path.display()));
        }
    };
    remove();
    let opts = SqliteConnectOptions::new().filename(&path).create_if_missing(true).journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(opts).await.unwrap();
    let store = Store::Sqlite(pool.clone(), pool.clone());
    store.migrate().await.unwrap();
    let (mut t, mut total) = (0i64, 0u64);
    for n in 1..=300usize {
        let batch: Vec<Sample> = (0..n)
            .map(|k| {
                t += 1;
                let vin = Vin::parse(&format!("LSJA24U66NS{:06}", k % 250)).unwrap();
                Sample::at(vin, from_ms(1_790_000_000_000 + t), 30.0, 122.0, SampleSource::Json)
            })
            .collect();
        let dead: Vec<DeadLetter> = (0..n % 7)
            .map(|_| {
                DeadLetter::new(
                    "fleet/v1/vehicles/x/telemetry",
                    None,
                    fleet_domain::DeadLetterReason::BadTopic,
                    "test",
                    b"x",
                )
            })
            .collect();
        let outcome = store.telemetry().commit(&batch, &dead).await.unwrap();
        assert_eq!((outcome.inserted, outcome.dead_letters), (n as u64, (n % 7) as u64));
        total += n as u64;
    }
    assert_eq!(store.telemetry().count(None).await.unwrap(), total as i64);
    let newest = store.telemetry().state("LSJA24U66NS000000").await.unwrap().unwrap();
    // Its newest sample is the last batch's 251st (k = 250).
    assert_eq!(to_ms(newest.ts), 1_790_000_000_000 + t - 49);
    let conn = pool.acquire().await.unwrap();
    // Samples, states and dead letters in six sizes each, plus the migration's and the
    // count's: a statement per batch size would be 100 (the cache's limit).
    let cached = conn.cached_statements_size();
    assert!(cached <= 24, "{cached} statements cached");
    drop(conn);
    pool.close().await;
    remove();
}

#[test]
fn months_are_counted_in_china_standard_time() {
    // 2026-10-31T16:00Z is 2026-11-01 00:00 in Shanghai.
    let t = DateTime::parse_from_rfc3339("2026-10-31T16:00:00Z").unwrap().with_timezone(&Utc);
    assert_eq!(cst_month(t), (2026, 11));
    assert_eq!(month_start(2026, 11), t);
}
