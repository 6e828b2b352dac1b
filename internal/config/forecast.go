package config

// Forecast configures the revenue forecasts.
type Forecast struct {
	// Schedule is the daily refresh's cron expression in UTC (FORECAST_SCHEDULE).
	Schedule string
	// Paths is the number of Monte Carlo paths per creator (FORECAST_PATHS).
	Paths int
	// BatchSize is how many creators one refresh activity handles (FORECAST_BATCH_SIZE).
	BatchSize int
}

func loadForecast(e *env) Forecast {
	return Forecast{
		Schedule:  e.str("FORECAST_SCHEDULE", "30 1 * * *"),
		Paths:     e.integer("FORECAST_PATHS", 1000, 100),
		BatchSize: e.integer("FORECAST_BATCH_SIZE", 500, 1),
	}
}
