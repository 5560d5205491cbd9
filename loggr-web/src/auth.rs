//! Users, passwords (argon2), sessions and CSRF tokens.
//!
//! A session is a random 32-byte id (from the operating system's RNG) in an `HttpOnly`,
//! `SameSite=Strict` cookie, mapped in memory to the user, the role, an expiry and the
//! session's CSRF token; every POST carries that token in a form field. The login form, posted
//! before any session exists, uses a double-submit token instead: a random value both in a
//! short-lived cookie and in the form, compared in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::config::{Role, UserConfig};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loggr_session";
/// The login form's double-submit CSRF cookie's name.
pub const LOGIN_CSRF_COOKIE: &str = "loggr_login_csrf";

/// A failure of the password machinery (not a wrong password).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The operating system's RNG failed.
    #[error("cannot read the operating system's random number generator")]
    Random(#[source] getrandom::Error),
    /// argon2 refused to hash.
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// `N` random bytes from the operating system, hex-encoded.
///
/// # Errors
///
/// [`AuthError::Random`] when the RNG fails.
pub fn random_hex<const N: usize>() -> Result<String, AuthError> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(AuthError::Random)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Hashes a password into an argon2id PHC string with a random salt and argon2's default
/// parameters (19 MiB, 2 passes), for the `password_hash` field of a user.
///
/// # Errors
///
/// [`AuthError`] when the RNG or argon2 fails.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(AuthError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (its own parameters are used).
pub fn verify_password(password: &str, hash: &str) -> bool {
    match PasswordHash::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Checks a login against the configured users; `None` when the user is unknown or the
/// password wrong. An unknown user still costs one argon2 verification (against another
/// user's hash, result ignored), so the answer time does not tell which names exist.
pub fn check_login(users: &[UserConfig], name: &str, password: &str) -> Option<(String, Role)> {
    match users.iter().find(|u| u.name == name) {
        Some(user) => {
            verify_password(password, &user.password_hash).then(|| (user.name.clone(), user.role))
        }
        None => {
            if let Some(any) = users.first() {
                let _ = verify_password(password, &any.password_hash);
            }
            None
        }
    }
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A logged-in user's session.
#[derive(Clone, Debug)]
pub struct Session {
    /// The user's name.
    pub user: String,
    /// The user's role.
    pub role: Role,
    /// The token every POST of this session must carry.
    pub csrf: String,
    expires: Instant,
}

/// The sessions, in memory (a restart logs everyone out).
#[derive(Debug)]
pub struct SessionStore {
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
}

impl SessionStore {
    /// An empty store whose sessions last `ttl`.
    pub fn new(ttl: Duration) -> SessionStore {
        SessionStore {
            ttl,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session; returns its id (the cookie value). Expired sessions are purged.
    ///
    /// # Errors
    ///
    /// [`AuthError::Random`] when the RNG fails.
    pub fn create(&self, user: String, role: Role) -> Result<String, AuthError> {
        let id = random_hex::<32>()?;
        let csrf = random_hex::<32>()?;
        let now = Instant::now();
        let session = Session {
            user,
            role,
            csrf,
            expires: now + self.ttl,
        };
        let mut sessions = self.lock();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut sessions = self.lock();
        match sessions.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// How many sessions are live (for the `loggr_web_sessions_open` gauge).
    pub fn open_count(&self) -> usize {
        let now = Instant::now();
        self.lock().values().filter(|s| s.expires > now).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves the map consistent (single inserts/removes).
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_comparison() {
        assert_eq!(
            cookie("a=1; loggr_session=abc; b=2", "loggr_session"),
            Some("abc")
        );
        assert_eq!(cookie("xloggr_session=abc", "loggr_session"), None);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }

    #[test]
    fn sessions_expire() {
        let store = SessionStore::new(Duration::from_millis(0));
        let id = store.create("a".into(), Role::Reader).unwrap();
        assert_eq!(id.len(), 64);
        assert!(store.get(&id).is_none());
        let store = SessionStore::new(Duration::from_secs(60));
        let id = store.create("a".into(), Role::Reader).unwrap();
        assert_eq!(store.get(&id).unwrap().user, "a");
        store.remove(&id);
        assert!(store.get(&id).is_none());
    }
}
