# Metadata for the enricher: the SNMP poller (interface names) and the BMP RIB (AS paths, communities).
# nomad job run -var image=registry.example/flowbus:0.1.0 deploy/nomad/flowbus-metadata.nomad.hcl   (from the repository root)
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

job "flowbus-metadata" {
  datacenters = var.datacenters
  type        = "service"

  update {
    max_parallel     = 1
    min_healthy_time = "10s"
    healthy_deadline = "3m"
    auto_revert      = true
  }

  group "snmp-poller" {
    count = 1

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
      name     = "flowbus-snmp-poller"
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

    task "snmp-poller" {
      driver = "docker"

      config {
        image = var.image
        args  = ["actor", "snmp-poller", "--config", "/local/config.yaml"]
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
        cpu    = 300
        memory = 256
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }
  }

  # Routers open BMP sessions to this static port; the RIB lives in memory (size it to the table).
  group "bmp-rib" {
    count = 1

    network {
      port "http" {
        to = 8080
      }
      port "bmp" {
        static = 10179
        to     = 10179
      }
    }

    restart {
      attempts = 10
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    service {
      name     = "flowbus-bmp-rib"
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

    task "bmp-rib" {
      driver = "docker"

      config {
        image = var.image
        args  = ["actor", "bmp-rib", "--config", "/local/config.yaml"]
        ports = ["http", "bmp"]
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
        memory = 2048
      }

      kill_timeout = "30s"
      kill_signal  = "SIGTERM"
    }
  }
}
