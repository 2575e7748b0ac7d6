//! A browser for the web application's tests, over plain HTTP: keeps
//! cookies, does not follow redirects (so that each test sees every 303),
//! and reads the CSRF token of a page's forms; and the accounts those
//! tests add beside the seeded ones.

use infusion_protocol::PatientLimits;
use infusion_testkit::{patient_id, seed_patient, seed_physician};

use super::{PASSWORD, TestApp};

/// A browser: keeps cookies, does not follow redirects.
pub struct Browser {
    pub http: reqwest::Client,
    pub base: String,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    /// The `Set-Cookie` headers of the answer.
    pub cookies: Vec<String>,
    pub body: String,
}

impl Page {
    /// The CSRF token of the page's first form.
    pub fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let at = self.body.find(marker).expect("a form with a CSRF token") + marker.len();
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Self::built(app, |b| b)
    }

    /// A browser whose client is further set up by `more` (a local address
    /// to come from, headers a proxy would add).
    pub fn built(
        app: &TestApp,
        more: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Browser {
        Browser {
            http: more(
                reqwest::Client::builder()
                    .cookie_store(true)
                    .redirect(reqwest::redirect::Policy::none()),
            )
            .build()
            .unwrap(),
            base: app.url(""),
        }
    }

    pub async fn page(resp: reqwest::Response) -> Page {
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        let cookies = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        Page {
            status,
            location,
            cookies,
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&self, path: &str) -> Page {
        Self::page(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        Self::page(
            self.http
                .post(format!("{}{path}", self.base))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// Where a successful form leads: it answered `303 See Other` to the
    /// page it belongs to (Post/Redirect/Get), which is fetched.
    pub async fn follow(&self, done: &Page) -> Page {
        assert_eq!(done.status, 303, "{}", done.body);
        let to = done.location.as_deref().expect("a 303 names where to go");
        self.get(to).await
    }

    /// Logs in; returns the page it lands on (after the redirect to `/`).
    pub async fn login(&self, username: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        let done = self
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", username),
                    ("password", password),
                ],
            )
            .await;
        if done.status == 303 {
            assert_eq!(done.location.as_deref(), Some("/"));
        }
        done
    }

    pub async fn logged_in(app: &TestApp, username: &str) -> Browser {
        let b = Browser::new(app);
        let p = b.login(username, PASSWORD).await;
        assert_eq!(p.status, 303, "{username}: {}", p.body);
        b
    }

    /// A CSRF token of this browser's session, from a page it may see.
    pub async fn csrf(&self, page: &str) -> String {
        self.get(page).await.csrf()
    }
}

/// Adds physician dr.other with patient carol (device 02:..:0C).
pub async fn second_physician(app: &TestApp) {
    let hash = infusion_server::password::PasswordParams::INSECURE_FAST
        .hash_blocking(PASSWORD)
        .unwrap();
    seed_physician(&*app.store, "dr.other", &hash).await;
    let limits = PatientLimits {
        min_rate_ul_h: 1_000,
        max_rate_ul_h: 10_000,
        max_volume_ul: 10_000,
    };
    seed_patient(
        &*app.store,
        "carol",
        "Carol",
        "dr.other",
        &hash,
        "02:00:00:00:00:0C",
        limits,
    )
    .await;
}

/// Adds administrator root (Ada Admin) at Test Clinic.
pub async fn add_admin(app: &TestApp) {
    add_admin_at(app, "root", "Test Clinic").await;
}

/// Adds administrator `username` at `institution`.
pub async fn add_admin_at(app: &TestApp, username: &str, institution: &str) {
    app.store
        .create_admin(
            infusion_store::NewPhysician {
                username: username.into(),
                first_name: "Ada".into(),
                last_name: "Admin".into(),
                institution: institution.into(),
                password_hash: infusion_server::password::PasswordParams::INSECURE_FAST
                    .hash_blocking(PASSWORD)
                    .unwrap(),
                must_change_password: false,
            },
            "test",
            0,
        )
        .await
        .unwrap();
}

/// What a patient's record looks like, to check a refusal changed nothing.
pub async fn snapshot(app: &TestApp, username: &str) -> String {
    let p = app
        .store
        .patient(patient_id(&*app.store, username).await)
        .await
        .unwrap();
    let versions = app.store.prescriptions(p.patient_id).await.unwrap();
    format!("{:?} {:?}", p.limits, versions)
}
