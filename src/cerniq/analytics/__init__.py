"""Analytics: daily figures per phone (and, elsewhere, dashboards and funnels)."""
