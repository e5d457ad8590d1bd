# Enricher shards: the CPU-heaviest stage, scaled by count (up to bus.partitions shards share flows.decoded).
# nomad job run -var image=registry.example/flowbus:0.1.0 deploy/nomad/flowbus-enricher.nomad.hcl   (from the repository root)
# Sizing and scaling: docs/deployment.md.

variable "image" {
  type        = string
  default     = "flowbus:latest"
  description = "the flowbus image (deploy/Dockerfile)"
}

variable "datacenters" {
  type    = list(string)
  default = ["dc1"]
}

variable "config_file" {
  type        = string
  default     = "deploy/examples/cluster.yaml"
  description = "the flowbus configuration rendered into each task (path from where `nomad job run` runs)"
}

variable "nats_servers" {
  type    = string
  default = "[nats://nats.service.consul:4222]"
}

variable "clickhouse_url" {
  type    = string
  default = "http://clickhouse.service.consul:8123"
}

variable "enricher_shards" {
  type        = number
  default     = 3
  description = "enricher instances (shards of the consumer group); at most bus.partitions"
}

job "flowbus-enricher" {
  datacenters = var.datacenters
  type        = "service"

  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  # Each instance is one shard of the consumer group; raise the count when enricher lag grows.
  group "enricher" {
    count = var.enricher_shards

    network {
      port "http" {
        to = 8080
      }
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      name     = "flowbus-enricher"
      port     = "http"
      provider = "nomad"
      tags     = ["flowbus", "metrics"]

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "2s"
      }

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "30s"
        timeout  = "2s"
      }
    }

    task "enricher" {
      driver = "docker"

      config {
        image = var.image
        args  = ["actor", "enricher", "--config", "/local/config.yaml"]
        ports = ["http"]
      }

      env {
        FLOWBUS_HTTP__LISTEN       = "0.0.0.0:8080"
        FLOWBUS_BUS__NATS__SERVERS = var.nats_servers
        FLOWBUS_CLICKHOUSE__URL    = var.clickhouse_url
      }

      # The shared configuration file; every actor reads its own section of it.
      template {
        data        = file(var.config_file)
        destination = "local/config.yaml"
        change_mode = "restart"
      }

      # The ClickHouse password from Nomad Variables: nomad var put nomad/jobs clickhouse_password=…
      template {
        data        = <<-EOT
          {{ with nomadVar "nomad/jobs" }}FLOWBUS_CLICKHOUSE__PASSWORD={{ .clickhouse_password }}{{ end }}
        EOT
        destination = "secrets/clickhouse.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu    = 1500
        memory = 1024
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }
  }
}
