/// The orders the catalog can be listed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSort {
    /// Newest first.
    Newest,
    PriceAsc,
    PriceDesc,
    /// By name, A to Z.
    Name,
}

impl ProductSort {
    pub const ALL: [ProductSort; 4] = [
        ProductSort::Newest,
        ProductSort::PriceAsc,
        ProductSort::PriceDesc,
        ProductSort::Name,
    ];

    /// The spelling in query strings and cursors.
    pub fn as_str(self) -> &'static str {
        match self {
            ProductSort::Newest => "newest",
            ProductSort::PriceAsc => "price_asc",
            ProductSort::PriceDesc => "price_desc",
            ProductSort::Name => "name",
        }
    }
}
