//! The PostgreSQL source on its own: compare-and-set writes, announced revisions (rows
//! inserted by hand included), history, heartbeats, and the local cache.

use std::time::Duration;

use sqlx::postgres::PgListener;
use switchyard::config::source::{Author, PgSource, SourceError, SourceOptions};

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_writes_with_compare_and_set_and_announces_revisions() {
    let _serial = SERIAL.lock().await;
    let Some(db) = TestDb::create().await else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let options = SourceOptions {
        replica: "unit".into(),
        cache_dir: Some(cache.path().to_path_buf()),
    };
    let pg = PgSource::parse(&db.direct_source_url(), &options).unwrap();
    assert!(matches!(pg.read().await, Err(SourceError::Empty { .. })));
    let mut listener: PgListener = pg.listen().await.unwrap();
    let author = Author {
        name: Some("ops".into()),
        reason: Some("first".into()),
    };

    assert_eq!(
        pg.write("a = 1\n", Some(0), &author, "push").await.unwrap(),
        1
    );
    let lost = pg
        .write("a = 2\n", Some(0), &author, "admin")
        .await
        .unwrap_err();
    assert!(
        matches!(
            lost,
            SourceError::Moved {
                based_on: 0,
                newest: 1
            }
        ),
        "{lost}"
    );
    assert_eq!(
        pg.write("a = 2\n", Some(1), &author, "admin")
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        pg.write("a = 3\n", None, &author, "rollback")
            .await
            .unwrap(),
        3
    );
    for expected in ["main:1", "main:2", "main:3"] {
        let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n.payload(), expected);
    }

    let newest = pg.read().await.unwrap();
    assert_eq!(
        (newest.revision, newest.text.as_str()),
        (Some(3), "a = 3\n")
    );
    assert_eq!(pg.read_revision(1).await.unwrap(), "a = 1\n");
    assert!(matches!(
        pg.read_revision(9).await,
        Err(SourceError::NoRevision { revision: 9, .. })
    ));

    // A revision inserted by hand is announced too, and recorded as such.
    let pool = db.pool().await;
    sqlx::query(
        "INSERT INTO switchyard_config.revisions (document, revision, text) VALUES ($1, 4, 'a = 4')",
    )
    .bind(DOCUMENT)
    .execute(&pool)
    .await
    .unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pg.announced(n.payload()), Some(4));
    let history = pg.revisions(10).await.unwrap();
    let numbers: Vec<u64> = history.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, [4, 3, 2, 1]);
    assert_eq!(
        (history[0].origin.as_str(), history[0].hash.is_none()),
        ("sql", true)
    );
    assert_eq!(history[1].origin, "rollback");
    assert_eq!(history[3].author, "ops");
    assert_eq!(history[3].replica.as_deref(), Some("unit"));
    assert_eq!(history[3].reason.as_deref(), Some("first"));

    // Eight writers computed from revision 4 at once: exactly one wins.
    let writes = (0..8).map(|i| {
        let pg = pg.clone();
        let author = author.clone();
        tokio::spawn(async move {
            pg.write(&format!("a = {i}\n"), Some(4), &author, "admin")
                .await
        })
    });
    let mut won = 0;
    for write in writes {
        match write.await.unwrap() {
            Ok(5) => won += 1,
            Err(SourceError::Moved {
                based_on: 4,
                newest: 5,
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);

    // Heartbeats make the fleet view; leaving removes the row.
    pg.heartbeat(&switchyard::config::source::Heartbeat {
        revision: 5,
        loaded_at_ms: 1,
        started_at_ms: 1,
        admin: Some("127.0.0.1:9901".into()),
        listening: true,
        last_error: None,
    })
    .await
    .unwrap();
    let view = pg.fleet(Duration::from_secs(60)).await.unwrap();
    assert_eq!(view.newest, 5);
    assert_eq!(view.replicas.len(), 1);
    assert_eq!(
        (view.replicas[0].replica.as_str(), view.replicas[0].revision),
        ("unit", Some(5))
    );
    pg.leave().await.unwrap();
    assert!(
        pg.fleet(Duration::from_secs(60))
            .await
            .unwrap()
            .replicas
            .is_empty()
    );

    // The last good revision is cached; without the database, it is what a start reads.
    pg.save_cache(5, "a = 5\n").await.unwrap();
    let gone = PgSource::parse("postgres://sy:sy@127.0.0.1:9/sy?document=main", &options).unwrap();
    let cached = gone.read_or_cached().await.unwrap();
    assert_eq!(
        (cached.revision, cached.text.as_str()),
        (Some(5), "a = 5\n")
    );
    let no_cache = SourceOptions {
        replica: "unit".into(),
        cache_dir: Some(cache.path().join("empty")),
    };
    let gone = PgSource::parse("postgres://sy:sy@127.0.0.1:9/sy?document=main", &no_cache).unwrap();
    let error = gone.read_or_cached().await.unwrap_err().to_string();
    assert!(
        error.contains("unavailable") && error.contains("no cached copy"),
        "{error}"
    );

    pg.close().await;
    pool.close().await;
}
