//! Side outputs: extra typed outputs of an operator, selected downstream by tag (Flink's
//! `OutputTag`, which replaced `split`/`select`).

use std::marker::PhantomData;

/// Names a side output carrying records of type `X`.
///
/// ```
/// use fjord::OutputTag;
/// let rejected: OutputTag<String> = OutputTag::new("rejected");
/// assert_eq!(rejected.id(), "rejected");
/// ```
pub struct OutputTag<X> {
    id: String,
    _t: PhantomData<fn() -> X>,
}

impl<X> OutputTag<X> {
    /// A tag with a job-unique id.
    pub fn new(id: impl Into<String>) -> Self {
        OutputTag {
            id: id.into(),
            _t: PhantomData,
        }
    }

    /// The tag's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl<X> Clone for OutputTag<X> {
    fn clone(&self) -> Self {
        OutputTag {
            id: self.id.clone(),
            _t: PhantomData,
        }
    }
}

impl<X> std::fmt::Debug for OutputTag<X> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputTag({}: {})", self.id, std::any::type_name::<X>())
    }
}
