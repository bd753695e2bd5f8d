//! CSV exports under Spin (docs/RULES.md R15.11): an export longer than a page leaves the
//! component a page at a time — chunked, with no length, since it is not known until the last
//! page is written — and what arrives is every record, read by a standard CSV reader, as the
//! JSON pages list them.

use testkit::{Item, Market, at, csv_rows};

use crate::harness::shared_app;

#[test]
fn an_export_longer_than_a_page_streams_chunked_and_is_every_record_of_the_json() {
    let market = shared_app();
    market.set_now(at("2026-03-27T08:00:00Z"));
    let (provider, product) = market.product_with_items("hour", &[Item::frequency()], true);
    let (_, customer) = market.funded_customer("100.00");
    let instance = market.order(&customer, &product);
    // 550 records: a page of 500 and the rest.
    market.push_hours(&provider, &instance, at("2026-03-27T08:00:00Z"), 55);
    let json = market.usage_records(&customer, &instance);
    assert_eq!(json.len(), 550);

    let path = format!("/api/v1/metering/usage?instance_id={instance}");
    let export = market.export(&path, &customer).expect(200);
    assert_eq!(
        export.header("content-length"),
        None,
        "an export's length is known only once it is written"
    );
    assert_eq!(export.header("transfer-encoding"), Some("chunked"));
    let (header, rows) = export.csv();
    assert_eq!(header[0], "item_code");
    assert_eq!(rows, csv_rows(&header, &json));
    // Less than a page is sent whole, with its length (the customer has no bill yet).
    let short = market.export("/api/v1/bills", &customer).expect(200);
    let length = short.body.len().to_string();
    assert_eq!(short.header("content-length"), Some(length.as_str()));
    assert!(short.csv().1.is_empty());
}
