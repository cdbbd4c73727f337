//! Limits over several instances: attempts spread over instances count together (Redis), so
//! adding instances never multiplies what one account or address may try.

use crate::{auth::wrong_passwords, helpers::TestApp};

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
