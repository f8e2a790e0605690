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
-- (they still count as sales); a store tombstone (hard-deleted at the source) leaves its
-- columns NULL.
--
-- Maintained incrementally, in proportion to the changes: the rows of lines that changed in
-- store, and of orders whose header changed in what this table shows of it, are computed
-- afresh and merged (only new, changed and vanished rows are written); a product, company or customer
-- that changed updates only its own columns (product_name; supplier_* or seller_company_*;
-- customer_*), and only in the rows where their value differs (found through this table's
-- key and product index). "Changed" means store etl_updated_datetime at or after the previous build's
-- transaction time (pres_build.since, which the pres runner sets from
-- etl_control.pres_watermark and advances after this file, in its transaction). Every store
-- upsert of a run commits before this file runs, so nothing can slip between the two.
-- Without a watermark row (first build, or the row deleted to force it) the table is
-- emptied and filled in one insert, its indexes built after it.

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

-- room on each page for a changed row's new version (PostgreSQL's HOT update: a row whose
-- indexed columns did not change is rewritten in its own page, no index entry added)
alter table pres.report_order_lines set (fillfactor = 90);
alter table pres.report_order_lines alter column order_no set not null;
alter table pres.report_order_lines alter column order_line_no set not null;
alter table pres.report_order_lines alter column etl_updated_datetime set not null;

-- the table's rows computed from store (a view of this transaction only: dropped at the end of
-- the file, so store's columns stay free to change type between runs)
drop view if exists pres.tmp_report_order_lines_rows;
create view pres.tmp_report_order_lines_rows as
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
    and lines.etl_deleted_datetime is null;

-- a full build (no watermark): the table emptied and filled in one insert
delete from pres.report_order_lines
where (select since from pres_build) = '1900-01-01 00:00:00+00';

insert into pres.report_order_lines
select rows.*
from pres.tmp_report_order_lines_rows as rows
where (select since from pres_build) = '1900-01-01 00:00:00+00';

-- otherwise a merge of the lines that changed since the watermark (range scans of store's
-- etl_updated_datetime index), and of every line of the orders whose header changed in
-- what this table shows of it: whether it is live (soft-deleted, tombstoned, back to life),
-- its seller or its customer (a header whose total alone changed changes no row here); their
-- rows computed afresh, then only the rows that differ written
drop table if exists tmp_changed_headers;
create temporary table tmp_changed_headers as
select
    headers.order_no,
    headers.company_id,
    headers.customer_document_no,
    case
        when (headers.is_deleted = '0' or headers.is_deleted is null) and headers.etl_deleted_datetime is null then 1
        else 0
    end as is_live
from store_mysql.order_headers as headers
inner join pres_build as watermark on headers.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

analyze tmp_changed_headers;

drop table if exists tmp_changed_orders;
create temporary table tmp_changed_orders as
select headers.order_no
from tmp_changed_headers as headers
where
    headers.is_live = 1
    and not exists (select 1 from pres.report_order_lines as report where report.order_no = headers.order_no)
union
select headers.order_no
from tmp_changed_headers as headers
inner join pres.report_order_lines as report on report.order_no = headers.order_no
where
    headers.is_live = 0
    or report.seller_company_id is distinct from headers.company_id
    or report.customer_document_no is distinct from headers.customer_document_no;

drop table if exists tmp_changed_lines;
create temporary table tmp_changed_lines as
select lines.order_no, lines.order_line_no
from store_mysql.order_lines as lines
inner join pres_build as watermark on lines.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00'
union
select lines.order_no, lines.order_line_no
from tmp_changed_orders as changed
inner join store_mysql.order_lines as lines on lines.order_no = changed.order_no;

analyze tmp_changed_lines;

drop table if exists tmp_order_rows;
create temporary table tmp_order_rows as
select rows.*
from pres.tmp_report_order_lines_rows as rows
where exists (
    select 1 from tmp_changed_lines as changed
    where changed.order_no = rows.order_no and changed.order_line_no = rows.order_line_no
);

analyze tmp_order_rows (order_no, order_line_no);

-- changed lines now gone (deleted, soft-deleted, or their header is)
delete from pres.report_order_lines as report
using tmp_changed_lines as changed
where
    report.order_no = changed.order_no
    and report.order_line_no = changed.order_line_no
    and not exists (
        select 1 from tmp_order_rows as fresh
        where fresh.order_no = report.order_no and fresh.order_line_no = report.order_line_no
    );

update pres.report_order_lines as report
set
    order_date = fresh.order_date,
    product_code = fresh.product_code,
    supplier_id = fresh.supplier_id,
    product_name = fresh.product_name,
    supplier_name = fresh.supplier_name,
    supplier_country = fresh.supplier_country,
    seller_company_id = fresh.seller_company_id,
    seller_company_name = fresh.seller_company_name,
    seller_country = fresh.seller_country,
    customer_document_no = fresh.customer_document_no,
    customer_full_name = fresh.customer_full_name,
    customer_username = fresh.customer_username,
    customer_country = fresh.customer_country,
    unit_price = fresh.unit_price,
    quantity = fresh.quantity,
    line_total = fresh.line_total,
    etl_updated_datetime = fresh.etl_updated_datetime
from tmp_order_rows as fresh
where
    report.order_no = fresh.order_no
    and report.order_line_no = fresh.order_line_no
    and (
        report.order_date is distinct from fresh.order_date
        or report.product_code is distinct from fresh.product_code
        or report.supplier_id is distinct from fresh.supplier_id
        or report.product_name is distinct from fresh.product_name
        or report.supplier_name is distinct from fresh.supplier_name
        or report.supplier_country is distinct from fresh.supplier_country
        or report.seller_company_id is distinct from fresh.seller_company_id
        or report.seller_company_name is distinct from fresh.seller_company_name
        or report.seller_country is distinct from fresh.seller_country
        or report.customer_document_no is distinct from fresh.customer_document_no
        or report.customer_full_name is distinct from fresh.customer_full_name
        or report.customer_username is distinct from fresh.customer_username
        or report.customer_country is distinct from fresh.customer_country
        or report.unit_price is distinct from fresh.unit_price
        or report.quantity is distinct from fresh.quantity
        or report.line_total is distinct from fresh.line_total
    );

insert into pres.report_order_lines
select fresh.*
from tmp_order_rows as fresh
where not exists (
    select 1 from pres.report_order_lines as report
    where report.order_no = fresh.order_no and report.order_line_no = fresh.order_line_no
);

-- the key and the product lookup of the updates below; on a full build they are built
-- once, after the insert (named as PostgreSQL names a primary key, so a table made
-- by an earlier version keeps its own)
create unique index if not exists report_order_lines_pkey on pres.report_order_lines (order_no, order_line_no);
create index if not exists report_order_lines_product_idx on pres.report_order_lines (supplier_id, product_code);

-- products, companies and customers changed since the watermark, with the values the
-- table shows for them (NULL for a store tombstone); nothing on a full build
drop table if exists tmp_changed_products;
create temporary table tmp_changed_products as
select
    products.product_code,
    products.supplier_id,
    case when products.etl_deleted_datetime is null then products.product_name end as product_name
from store_mysql.products as products
inner join pres_build as watermark on products.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

drop table if exists tmp_changed_companies;
create temporary table tmp_changed_companies as
select
    companies.company_id,
    case when companies.etl_deleted_datetime is null then companies.company_name end as company_name,
    case when companies.etl_deleted_datetime is null then companies.country end as country
from store_mysql.companies as companies
inner join pres_build as watermark on companies.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

drop table if exists tmp_changed_customers;
create temporary table tmp_changed_customers as
select
    customers.customer_document_no,
    case when customers.etl_deleted_datetime is null then customers.customer_full_name end as customer_full_name,
    case when customers.etl_deleted_datetime is null then customers.username end as username,
    case when customers.etl_deleted_datetime is null then customers.country end as country
from store_mysql.customers as customers
inner join pres_build as watermark on customers.etl_updated_datetime >= watermark.since
where watermark.since > '1900-01-01 00:00:00+00';

analyze tmp_changed_products;
analyze tmp_changed_companies;
analyze tmp_changed_customers;

-- each changed member updates its own columns where they differ (a renamed supplier
-- rewrites its lines; a repriced product or a moved customer writes nothing)
update pres.report_order_lines as report
set product_name = products.product_name, etl_updated_datetime = now()
from tmp_changed_products as products
where
    report.supplier_id = products.supplier_id
    and report.product_code = products.product_code
    and report.product_name is distinct from products.product_name;

update pres.report_order_lines as report
set supplier_name = suppliers.company_name, supplier_country = suppliers.country, etl_updated_datetime = now()
from tmp_changed_companies as suppliers
where
    report.supplier_id = suppliers.company_id
    and (
        report.supplier_name is distinct from suppliers.company_name
        or report.supplier_country is distinct from suppliers.country
    );

-- (sellers and customers reach their rows through the store headers, the rows through the key)
update pres.report_order_lines as report
set seller_company_name = sellers.company_name, seller_country = sellers.country, etl_updated_datetime = now()
from store_mysql.order_headers as headers
inner join tmp_changed_companies as sellers on sellers.company_id = headers.company_id
where
    report.order_no = headers.order_no
    and (
        report.seller_company_name is distinct from sellers.company_name
        or report.seller_country is distinct from sellers.country
    );

update pres.report_order_lines as report
set
    customer_full_name = customers.customer_full_name,
    customer_username = customers.username,
    customer_country = customers.country,
    etl_updated_datetime = now()
from store_mysql.order_headers as headers
inner join tmp_changed_customers as customers on customers.customer_document_no = headers.customer_document_no
where
    report.order_no = headers.order_no
    and (
        report.customer_full_name is distinct from customers.customer_full_name
        or report.customer_username is distinct from customers.username
        or report.customer_country is distinct from customers.country
    );

drop view pres.tmp_report_order_lines_rows;
drop table tmp_changed_headers;
drop table tmp_changed_orders;
drop table tmp_changed_lines;
drop table tmp_order_rows;
drop table tmp_changed_products;
drop table tmp_changed_companies;
drop table tmp_changed_customers;
