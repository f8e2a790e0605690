-- The IP country with most distinct logged-in users last year (ties: more login requests,
-- then country code), then the top 10 products bought last year by that country's
-- customers (customers.country = that country), by quantity.
-- Last year: the previous calendar year (weblogs by request_timestamp_converted, UTC;
-- sales by order_date). A login is a request with a username (not '-'); requests without
-- an IP country are not counted. Sales: live order lines, from pres.report_order_lines.
-- Columns: country, rank (1..10), product_code, supplier_id, product_name, supplier_name
-- (the supplier company's name), total_quantity, total_amount (to the cent), period_start
-- and period_end (the first and last day of last year, the same on every row).
-- Order: total_quantity desc, total_amount desc (unknown, NULL, totals last), product_code,
-- supplier_id (ids in their own type's order: numbers numerically, text in the column's
-- collation).

with
bounds as (
    select
        (date_trunc('year', current_date) - interval '1 year')::date as first_day,
        date_trunc('year', current_date)::date as next_year
),

top_country as (
    select access.country
    from pres.report_weblog_access as access
    cross join bounds
    where
        access.username <> '-'
        and access.country <> ''
        and access.request_timestamp_converted >= bounds.first_day
        and access.request_timestamp_converted < bounds.next_year
    group by access.country
    order by count(distinct access.username) desc, count(*) desc, access.country collate "C"
    limit 1
),

by_product as (
    select
        top_country.country,
        lines.product_code,
        lines.supplier_id,
        max(lines.product_name) as product_name,
        max(lines.supplier_name) as supplier_name,
        sum(lines.quantity) as total_quantity,
        sum(lines.line_total) as total_amount
    from pres.report_order_lines as lines
    inner join top_country on lines.customer_country = top_country.country
    cross join bounds
    where lines.order_date >= bounds.first_day and lines.order_date < bounds.next_year
    group by top_country.country, lines.product_code, lines.supplier_id
)

select
    country,
    row_number() over (
        order by total_quantity desc nulls last, total_amount desc nulls last, product_code, supplier_id
    ) as rank,
    product_code,
    supplier_id,
    product_name,
    supplier_name,
    total_quantity,
    round(total_amount::numeric, 2) as total_amount,
    bounds.first_day as period_start,
    (bounds.next_year - interval '1 day')::date as period_end
from by_product
cross join bounds
order by rank
limit 10;
