"""The demo: sandbox vendors, 20 phones, a few hundred Romanian demo leads, a live outreach day."""
