-- Monthly sales of last year (the previous calendar year, by the order line's order_date):
-- 12 rows, one per month, months without sales as 0.
-- Sales: live order lines (line and header not soft-deleted; lines of soft-deleted
-- customers or products still count), from pres.report_order_lines.
-- Columns: year_month (YYYY-MM), order_count (distinct orders among the counted lines),
-- total_quantity, total_amount (sum of line_total, to the cent), period_start and period_end
-- (the first and last day of the period the report covers, the same on every row).
-- Order: year_month.

with
bounds as (
    select
        (date_trunc('year', current_date) - interval '1 year')::date as first_day,
        date_trunc('year', current_date)::date as next_year
),

-- the calendar dimension holds every day of last year (sql/pres/030_dim_date.sql)
months as (
    select distinct date_trunc('month', dates.full_date)::date as month_start
    from pres.dim_date as dates
    cross join bounds
    where dates.full_date >= bounds.first_day and dates.full_date < bounds.next_year
),

sales as (
    select
        date_trunc('month', lines.order_date)::date as month_start,
        count(distinct lines.order_no) as order_count,
        sum(lines.quantity) as total_quantity,
        sum(lines.line_total) as total_amount
    from pres.report_order_lines as lines
    cross join bounds
    where lines.order_date >= bounds.first_day and lines.order_date < bounds.next_year
    group by 1
)

select
    to_char(months.month_start, 'YYYY-MM') as year_month,
    coalesce(sales.order_count, 0) as order_count,
    coalesce(sales.total_quantity, 0) as total_quantity,
    round(coalesce(sales.total_amount, 0)::numeric, 2) as total_amount,
    bounds.first_day as period_start,
    (bounds.next_year - interval '1 day')::date as period_end
from months
cross join bounds
left join sales on sales.month_start = months.month_start
order by year_month;
