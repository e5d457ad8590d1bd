# Storage and queries: ClickHouse writers (acknowledge the bus once rows are committed) and GraphQL gateways.
# nomad job run -var image=registry.example/flowbus:0.1.0 deploy/nomad/flowbus-storage.nomad.hcl   (from the repository root)
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

variable "writers" {
  type    = number
  default = 2
}

variable "gateways" {
  type    = number
  default = 1
}

job "flowbus-storage" {
  datacenters = var.datacenters
  type        = "service"

  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  # Writers share flows.enriched; more writers help while ClickHouse keeps up with the inserts.
  group "clickhouse-writer" {
    count = var.writers

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
      name     = "flowbus-clickhouse-writer"
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

    task "clickhouse-writer" {
      driver = "docker"

      config {
        image = var.image
        args  = ["actor", "clickhouse-writer", "--config", "/local/config.yaml"]
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
        cpu    = 1000
        memory = 1024
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }
  }

  group "gateway" {
    count = var.gateways

    network {
      port "http" {
        to = 8080
      }
      port "graphql" {
        to = 8081
      }
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      name     = "flowbus-gateway"
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
    service {
      name     = "flowbus-gateway-graphql"
      port     = "graphql"
      provider = "nomad"
      tags     = ["flowbus", "graphql"]

      check {
        type     = "http"
        path     = "/graphql?query=%7B__typename%7D"
        interval = "10s"
        timeout  = "2s"
      }
    }

    task "gateway" {
      driver = "docker"

      config {
        image = var.image
        args  = ["actor", "gateway", "--config", "/local/config.yaml"]
        ports = ["http", "graphql"]
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
        cpu    = 500
        memory = 512
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }
  }
}
