/// A value the domain refuses: the field it came in and why. The domain's only error; the layer above
/// maps it, once, to its own (`error::Error::Validation`), so `domain/` depends on nothing of the crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
