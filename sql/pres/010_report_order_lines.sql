-- pres.report_order_lines
-- Grain: one row per live order line (order line and its header not soft-deleted: their
-- is_deleted flag is 0, false or NULL; "is_deleted = '0'" compares in the column's own type,
-- 0, false or B'0', and keeps the column's statistics for the planner). Key: (order_no,
-- order_line_no).
-- Columns take the store columns' own types (the create statement below derives them
-- from store; when store types change, the pres runner alters this table to match).
-- Only the key columns are NOT NULL: any attribute may be NULL in the source.
-- Each line joined to its header, product (product_code + supplier_id), supplier and seller
-- companies and customer. Lines of soft-deleted customers, products or companies are kept
-- (they still count as sales).
--
-- Maintained incrementally: only orders touched since the previous build are recomputed,
-- i.e. orders whose lines or header changed in store, or that reference a product,
-- company or customer that changed. "Changed" means store etl_updated_datetime at or after
-- the previous build's transaction time (pres_build.since, which the pres runner sets
-- from etl_control.pres_watermark and advances after this file, in its transaction). Every
-- store upsert of a run commits before this file runs, so nothing can slip between the two.
-- Without a watermark row (first build, or the row deleted to force it) the table is
-- rebuilt in full.

create table if not exists pres.report_order_lines as
select
    lines.order_no,
    lines.order_line_no,
    lines.order_date,
    lines.product_code,
    lines.supplier_id,
    products.product_name,
    suppliers.company_name as supplier_name,
    suppliers.country as supplier_country,
    headers.company_id as seller_company_id,
    sellers.company_name as seller_company_name,
    sellers.country as seller_country,
    headers.customer_document_no,
    customers.customer_full_name,
    customers.username as customer_username,
    customers.country as customer_country,
    lines.unit_price,
    lines.quantity,
    lines.line_total,
    now() as etl_updated_datetime
from store_mysql.order_lines as lines
cross join store_mysql.order_headers as headers
cross join store_mysql.products as products
cross join store_mysql.companies as suppliers
cross join store_mysql.companies as sellers
cross join store_mysql.customers as customers
with no data;

-- the key: named as PostgreSQL names a primary key, so a table made by an earlier version
-- (with a primary key) keeps its own
create unique index if not exists report_order_lines_pkey on pres.report_order_lines (order_no, order_line_no);
alter table pres.report_order_lines alter column order_no set not null;
alter table pres.report_order_lines alter column order_line_no set not null;
alter table pres.report_order_lines alter column etl_updated_datetime set not null;

-- products, companies and customers changed since the watermark (range scans of their
-- etl_updated_datetime index), materialised first: a run in which none changed never
-- scans the order lines or headers for them (an empty hash side ends the join at once)
drop table if exists tmp_changed_products;
create temporary table tmp_changed_products as
select products.product_code, products.supplier_id
from store_mysql.products as products
inner join pres_build as watermark on products.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

drop table if exists tmp_changed_companies;
create temporary table tmp_changed_companies as
select companies.company_id
from store_mysql.companies as companies
inner join pres_build as watermark on companies.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

drop table if exists tmp_changed_customers;
create temporary table tmp_changed_customers as
select customers.customer_document_no
from store_mysql.customers as customers
inner join pres_build as watermark on customers.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

analyze tmp_changed_products;
analyze tmp_changed_companies;
analyze tmp_changed_customers;

-- orders to (re)build: every order on a full build (no watermark), else those touched
-- since the watermark
drop table if exists tmp_changed_orders;
create temporary table tmp_changed_orders as
with
watermark as (
    select since from pres_build where since > '1900-01-01 00:00:00+00'
)

select headers.order_no
from store_mysql.order_headers as headers
where (select since from pres_build) = '1900-01-01 00:00:00+00'
union
select lines.order_no
from store_mysql.order_lines as lines
inner join watermark on lines.etl_updated_datetime >= watermark.since
union
select headers.order_no
from store_mysql.order_headers as headers
inner join watermark on headers.etl_updated_datetime >= watermark.since
union
select headers.order_no
from store_mysql.order_headers as headers
inner join tmp_changed_customers as customers on customers.customer_document_no = headers.customer_document_no
union
select headers.order_no
from store_mysql.order_headers as headers
inner join tmp_changed_companies as sellers on sellers.company_id = headers.company_id
union
select lines.order_no
from store_mysql.order_lines as lines
inner join tmp_changed_products as products
    on products.product_code = lines.product_code and products.supplier_id = lines.supplier_id
union
select lines.order_no
from store_mysql.order_lines as lines
inner join tmp_changed_companies as suppliers on suppliers.company_id = lines.supplier_id;

analyze tmp_changed_orders;

delete from pres.report_order_lines
where order_no in (select order_no from tmp_changed_orders);

insert into pres.report_order_lines
select
    lines.order_no,
    lines.order_line_no,
    lines.order_date,
    lines.product_code,
    lines.supplier_id,
    products.product_name,
    suppliers.company_name as supplier_name,
    suppliers.country as supplier_country,
    headers.company_id as seller_company_id,
    sellers.company_name as seller_company_name,
    sellers.country as seller_country,
    headers.customer_document_no,
    customers.customer_full_name,
    customers.username as customer_username,
    customers.country as customer_country,
    lines.unit_price,
    lines.quantity,
    lines.line_total,
    now() as etl_updated_datetime
from store_mysql.order_lines as lines
inner join store_mysql.order_headers as headers
    on
        headers.order_no = lines.order_no and (headers.is_deleted = '0' or headers.is_deleted is null)
        and headers.etl_deleted_datetime is null
left join store_mysql.products as products
    on
        products.product_code = lines.product_code and products.supplier_id = lines.supplier_id
        and products.etl_deleted_datetime is null
left join store_mysql.companies as suppliers
    on suppliers.company_id = lines.supplier_id and suppliers.etl_deleted_datetime is null
left join store_mysql.companies as sellers
    on sellers.company_id = headers.company_id and sellers.etl_deleted_datetime is null
left join store_mysql.customers as customers
    on customers.customer_document_no = headers.customer_document_no and customers.etl_deleted_datetime is null
where
    (lines.is_deleted = '0' or lines.is_deleted is null)
    and lines.etl_deleted_datetime is null
    and lines.order_no in (select order_no from tmp_changed_orders);

drop table tmp_changed_orders;
drop table tmp_changed_products;
drop table tmp_changed_companies;
drop table tmp_changed_customers;
