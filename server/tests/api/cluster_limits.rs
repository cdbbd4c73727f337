//! Limits over several instances: attempts spread over instances count together (Redis), so
//! adding instances never multiplies what one account or address may try.

use crate::{
    auth::wrong_passwords,
    helpers::TestApp,
    limits::{refused_status, reopens},
};

#[tokio::test]
async fn parallel_wrong_passwords_over_three_instances_get_only_the_allowed_number_of_tries() {
    let (_redis, apps) = TestApp::cluster(3).await;
    apps[0].person("Ann").await;
    let statuses = wrong_passwords(&[&apps[0], &apps[1], &apps[2]], "ann@example.com", 25).await;
    let tried = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((tried, limited), (5, 20), "{statuses:?}");
    // The right password, through any instance, waits too.
    let response = apps[2]
        .client
        .post(apps[2].url("/api/auth/sign_in"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", crate::people::PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn failed_code_guesses_count_over_all_instances() {
    let (_redis, apps) = TestApp::cluster(3).await;
    // Two failed guesses per address per ten minutes by default (a tenth of 20 redeems).
    let mut statuses = Vec::new();
    for app in apps.iter().cycle().take(6) {
        statuses.push(app.redeem("000000").await.0);
    }
    assert_eq!(statuses, [410, 410, 429, 429, 429, 429], "{statuses:?}");
}

#[tokio::test]
async fn socket_caps_count_over_all_instances_and_closed_sockets_give_their_place_back() {
    let (_redis, apps) = TestApp::cluster_with(2, |c| {
        c.ws_sockets_per_principal = 3;
        c.ws_sockets_per_ip = 5;
    })
    .await;
    let (a, b) = (&apps[0], &apps[1]);
    let ann = a.person("Ann").await;
    let mut tabs = vec![
        a.socket(&ann).await,
        a.socket(&ann).await,
        b.socket(&ann).await,
    ];
    // A fourth tab is refused wherever it lands.
    for app in [a, b] {
        assert_eq!(refused_status(app.try_socket(Some(&ann.cookie)).await), 429);
    }
    // The address cap counts every instance too: 3 of Ann's, then Bob's two, then no more.
    let bob = b.person("Bob").await;
    let _bob_tabs = [b.socket(&bob).await, a.socket(&bob).await];
    assert_eq!(refused_status(b.try_socket(Some(&bob.cookie)).await), 429);
    // A closed tab gives its place back (once its instance saw it go), on any instance.
    drop(tabs.pop());
    assert!(
        reopens(a, &ann.cookie).await,
        "the freed place was not given back"
    );
}

#[tokio::test]
async fn socket_caps_still_hold_after_redis_restarts_empty() {
    let (mut redis, apps) = TestApp::cluster_with(2, |c| {
        c.ws_sockets_per_principal = 3;
    })
    .await;
    let (a, b) = (&apps[0], &apps[1]);
    let ann = a.person("Ann").await;
    let _tabs = [
        a.socket(&ann).await,
        a.socket(&ann).await,
        b.socket(&ann).await,
    ];
    redis.restart();
    // Once both instances found Redis empty and registered again, the three open tabs still
    // count: a fourth is refused wherever it lands.
    for app in [a, b] {
        assert!(app.ready_again().await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for app in [a, b] {
        assert_eq!(refused_status(app.try_socket(Some(&ann.cookie)).await), 429);
    }
}
