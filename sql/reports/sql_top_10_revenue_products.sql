-- Top 10 products (product_code + supplier_id) by revenue last year (previous calendar
-- year, by the order line's order_date). Sales: live order lines (line and header not
-- soft-deleted), from pres.report_order_lines.
-- Columns: rank (1..10), product_code, supplier_id, product_name, supplier_name (the
-- supplier company's name), total_quantity, total_amount (sum of line_total, to the cent),
-- period_start and period_end (the first and last day of last year, the same on every row).
-- Order: total_amount desc (a product whose every amount is NULL last), product_code,
-- supplier_id (ids in their own type's order: numbers numerically, text in the column's
-- collation).

with
bounds as (
    select
        (date_trunc('year', current_date) - interval '1 year')::date as first_day,
        date_trunc('year', current_date)::date as next_year
),

by_product as (
    select
        lines.product_code,
        lines.supplier_id,
        max(lines.product_name) as product_name,
        max(lines.supplier_name) as supplier_name,
        sum(lines.quantity) as total_quantity,
        sum(lines.line_total) as total_amount
    from pres.report_order_lines as lines
    cross join bounds
    where lines.order_date >= bounds.first_day and lines.order_date < bounds.next_year
    group by lines.product_code, lines.supplier_id
)

select
    row_number() over (order by total_amount desc nulls last, product_code, supplier_id) as rank,
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
