//! Who is calling, and what they may do. Only `SessionService::authenticate` makes a `Principal`
//! (from a verified token whose session is live), and only `Principal::admin` makes an `Admin`, so a
//! service that takes an `&Admin` cannot be reached by a caller the admin check refused.

use crate::domain::{Role, SessionId, UserId};
use crate::error::Error;

/// The caller of an authenticated request.
#[derive(Debug, Clone)]
pub struct Principal {
    user_id: UserId,
    role: Role,
    session_id: SessionId,
}

impl Principal {
    pub(super) fn new(user_id: UserId, role: Role, session_id: SessionId) -> Self {
        Self {
            user_id,
            role,
            session_id,
        }
    }

    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn session_id(&self) -> &SessionId {
        &self.session_id
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// The admin capability, for a principal whose role is admin; `Forbidden` otherwise.
    pub fn admin(&self) -> Result<Admin, Error> {
        if self.is_admin() {
            Ok(Admin {
                user_id: self.user_id.clone(),
            })
        } else {
            Err(Error::Forbidden)
        }
    }
}

/// Proof that the caller is an admin: the argument of every admin-only service operation (catalog
/// writes, order moves, listings of everyone's orders). It has no public constructor.
#[derive(Debug, Clone)]
pub struct Admin {
    user_id: UserId,
}

impl Admin {
    /// The admin acting, for the logs.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }
}
