-- pres.report_order_lines
-- Grain: one row per live order line (order_lines and order_headers not soft-deleted).
-- Key: (order_no, order_line_no).
-- Joins each line to its header, product (by product_code + supplier_id), supplier and
-- seller companies and customer. Lines of soft-deleted customers, products or companies
-- are kept (they still count as sales). Rebuilt in full in this file's transaction.

create schema if not exists pres;

create table if not exists pres.report_order_lines (
    order_no varchar(20) not null,
    order_line_no integer not null,
    order_date date not null,
    product_code varchar(20) not null,
    supplier_id integer not null,
    product_name varchar(200),
    supplier_name varchar(200),
    supplier_country char(2),
    seller_company_id integer,
    seller_company_name varchar(200),
    seller_country char(2),
    customer_document_no varchar(20),
    customer_full_name varchar(200),
    customer_username varchar(64),
    customer_country char(2),
    unit_price numeric(10, 2),
    quantity integer,
    line_total numeric(20, 4),
    etl_updated_datetime timestamptz not null,
    primary key (order_no, order_line_no)
);

truncate pres.report_order_lines;

insert into pres.report_order_lines
with
lines as (
    select * from store_mysql.order_lines where is_deleted = 0
),

headers as (
    select * from store_mysql.order_headers where is_deleted = 0
)

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
from lines
inner join headers on headers.order_no = lines.order_no
left join store_mysql.products as products
    on products.product_code = lines.product_code and products.supplier_id = lines.supplier_id
left join store_mysql.companies as suppliers on suppliers.company_id = lines.supplier_id
left join store_mysql.companies as sellers on sellers.company_id = headers.company_id
left join store_mysql.customers as customers on customers.customer_document_no = headers.customer_document_no;
