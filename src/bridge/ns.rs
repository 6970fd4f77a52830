//! The network servers' MQTT formats: topics, uplink events in, downlink commands out.
//!
//! - ChirpStack v4 publishes `integration.UplinkEvent` on
//!   `application/{application_id}/device/{dev_eui}/event/up` and takes `integration.DownlinkCommand`
//!   on `application/{application_id}/device/{dev_eui}/command/down`, both as the protobuf JSON
//!   mapping (camelCase, bytes in base64). Both are parsed and written with ChirpStack's own
//!   published types (`chirpstack_api::integration`).
//! - The Things Stack v3 publishes uplink messages on
//!   `v3/{application_id}@{tenant}/devices/{device_id}/up` (`end_device_ids.dev_eui`,
//!   `uplink_message.f_port`, `uplink_message.frm_payload` in base64) and takes
//!   `{"downlinks":[{"f_port":..,"frm_payload":..,"priority":..}]}` on
//!   `v3/{application_id}@{tenant}/devices/{device_id}/down/push`. It publishes no Rust types;
//!   the few fields used are read with serde.

use base64::Engine as _;
use chirpstack_api::integration::{DownlinkCommand, UplinkEvent};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::config::{parse_hex, NetworkServerKind};
use crate::network::{hex, DevEui};

/// An uplink as the bridge needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    /// The device.
    pub dev_eui: DevEui,
    /// The FPort; `None` for a frame without one (MAC commands only).
    pub fport: Option<u8>,
    /// The FRMPayload.
    pub payload: Vec<u8>,
    /// The uplink frame counter.
    pub f_cnt: u32,
    /// The Things Stack's device ID (needed to address its downlinks).
    pub device_id: Option<String>,
}

/// Why an MQTT message was not taken as an uplink.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NsError {
    /// The topic is not an uplink topic of this application.
    #[error("topic {0:?} is not an uplink topic of this application")]
    Topic(String),
    /// The payload is not the network server's uplink JSON.
    #[error("topic {topic}: not an uplink event: {problem}")]
    Json {
        /// The topic.
        topic: String,
        /// serde's message (with line and column).
        problem: String,
    },
    /// A field has a value the bridge cannot use.
    #[error("topic {topic}: {field}: {problem}")]
    Field {
        /// The topic.
        topic: String,
        /// The JSON field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
}

/// A downlink to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The topic.
    pub topic: String,
    /// The JSON payload.
    pub payload: Vec<u8>,
}

impl NetworkServerKind {
    /// The MQTT topic filter of every uplink of the application.
    pub fn uplink_filter(&self) -> String {
        match self {
            Self::ChirpStack { application_id } => {
                format!("application/{application_id}/device/+/event/up")
            }
            Self::Tts {
                application_id,
                tenant,
            } => format!("v3/{application_id}@{tenant}/devices/+/up"),
        }
    }

    /// The uplink topic of one device (The Things Stack names devices by their ID: `None`
    /// without one).
    pub fn device_topic(&self, dev_eui: &DevEui, device_id: Option<&str>) -> Option<String> {
        match self {
            Self::ChirpStack { application_id } => Some(format!(
                "application/{application_id}/device/{}/event/up",
                hex(dev_eui)
            )),
            Self::Tts {
                application_id,
                tenant,
            } => device_id.map(|id| format!("v3/{application_id}@{tenant}/devices/{id}/up")),
        }
    }

    /// Reads an uplink event published on `topic`.
    pub fn parse_uplink(&self, topic: &str, payload: &[u8]) -> Result<Uplink, NsError> {
        let field = |field, problem: String| NsError::Field {
            topic: topic.to_string(),
            field,
            problem,
        };
        let json = |e: serde_json::Error| NsError::Json {
            topic: topic.to_string(),
            problem: e.to_string(),
        };
        let fport = |p: u32| -> Result<Option<u8>, NsError> {
            match p {
                0 => Ok(None),
                p => u8::try_from(p)
                    .map(Some)
                    .map_err(|_| field("fPort", format!("{p} is not an FPort"))),
            }
        };
        match self {
            Self::ChirpStack { application_id } => {
                let segment = topic
                    .strip_prefix("application/")
                    .and_then(|t| t.strip_prefix(application_id.as_str()))
                    .and_then(|t| t.strip_prefix("/device/"))
                    .and_then(|t| t.strip_suffix("/event/up"))
                    .filter(|s| !s.contains('/'))
                    .ok_or_else(|| NsError::Topic(topic.to_string()))?;
                let ev: UplinkEvent = serde_json::from_slice(payload).map_err(json)?;
                let info = ev
                    .device_info
                    .as_ref()
                    .ok_or_else(|| field("deviceInfo", "missing".into()))?;
                let dev_eui: DevEui =
                    parse_hex(&info.dev_eui).map_err(|p| field("deviceInfo.devEui", p))?;
                if !segment.eq_ignore_ascii_case(&hex(&dev_eui)) {
                    return Err(field(
                        "deviceInfo.devEui",
                        format!("{} is not the topic's {segment}", hex(&dev_eui)),
                    ));
                }
                Ok(Uplink {
                    dev_eui,
                    fport: fport(ev.f_port)?,
                    payload: ev.data,
                    f_cnt: ev.f_cnt,
                    device_id: None,
                })
            }
            Self::Tts {
                application_id,
                tenant,
            } => {
                let device_id = topic
                    .strip_prefix("v3/")
                    .and_then(|t| t.strip_prefix(application_id.as_str()))
                    .and_then(|t| t.strip_prefix('@'))
                    .and_then(|t| t.strip_prefix(tenant.as_str()))
                    .and_then(|t| t.strip_prefix("/devices/"))
                    .and_then(|t| t.strip_suffix("/up"))
                    .filter(|s| !s.is_empty() && !s.contains('/'))
                    .ok_or_else(|| NsError::Topic(topic.to_string()))?;
                let up: TtsUp = serde_json::from_slice(payload).map_err(json)?;
                let eui = up
                    .end_device_ids
                    .dev_eui
                    .ok_or_else(|| field("end_device_ids.dev_eui", "missing".into()))?;
                let dev_eui: DevEui =
                    parse_hex(&eui).map_err(|p| field("end_device_ids.dev_eui", p))?;
                if up.end_device_ids.device_id != device_id {
                    return Err(field(
                        "end_device_ids.device_id",
                        format!(
                            "{:?} is not the topic's {device_id:?}",
                            up.end_device_ids.device_id
                        ),
                    ));
                }
                let m = up
                    .uplink_message
                    .ok_or_else(|| field("uplink_message", "missing".into()))?;
                let payload = match m.frm_payload {
                    Some(b) => base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|e| field("uplink_message.frm_payload", e.to_string()))?,
                    None => Vec::new(),
                };
                Ok(Uplink {
                    dev_eui,
                    fport: fport(m.f_port.unwrap_or(0))?,
                    payload,
                    f_cnt: m.f_cnt.unwrap_or(0),
                    device_id: Some(device_id.to_string()),
                })
            }
        }
    }

    /// The downlink command that queues `payload` on `fport` for the device. The Things Stack
    /// addresses devices by their device ID: `None` when it is not known yet.
    pub fn downlink(
        &self,
        dev_eui: &DevEui,
        device_id: Option<&str>,
        fport: u8,
        payload: &[u8],
    ) -> Option<Publish> {
        match self {
            Self::ChirpStack { application_id } => {
                let eui = hex(dev_eui);
                let cmd = DownlinkCommand {
                    dev_eui: eui.clone(),
                    confirmed: false,
                    f_port: u32::from(fport),
                    data: payload.to_vec(),
                    ..Default::default()
                };
                Some(Publish {
                    topic: format!("application/{application_id}/device/{eui}/command/down"),
                    payload: serde_json::to_vec(&cmd).unwrap_or_default(),
                })
            }
            Self::Tts {
                application_id,
                tenant,
            } => {
                let device_id = device_id?;
                let push = TtsPush {
                    downlinks: [TtsDownlink {
                        f_port: fport,
                        frm_payload: base64::engine::general_purpose::STANDARD.encode(payload),
                        priority: "NORMAL",
                    }],
                };
                Some(Publish {
                    topic: format!("v3/{application_id}@{tenant}/devices/{device_id}/down/push"),
                    payload: serde_json::to_vec(&push).unwrap_or_default(),
                })
            }
        }
    }
}

#[derive(Deserialize)]
struct TtsUp {
    end_device_ids: TtsIds,
    uplink_message: Option<TtsUplink>,
}

#[derive(Deserialize)]
struct TtsIds {
    device_id: String,
    dev_eui: Option<String>,
}

#[derive(Deserialize)]
struct TtsUplink {
    f_port: Option<u32>,
    f_cnt: Option<u32>,
    frm_payload: Option<String>,
}

#[derive(Serialize)]
struct TtsPush {
    downlinks: [TtsDownlink; 1],
}

#[derive(Serialize)]
struct TtsDownlink {
    f_port: u8,
    frm_payload: String,
    priority: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs() -> NetworkServerKind {
        NetworkServerKind::ChirpStack {
            application_id: "app-1".into(),
        }
    }

    /// An uplink event as ChirpStack v4.x's MQTT integration publishes it with the JSON
    /// marshaler (from ChirpStack's documentation of the event, trimmed of radio metadata).
    const CHIRPSTACK_UP: &str = r#"{
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2022-07-18T09:34:15.775023242+00:00",
        "deviceInfo": {"tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242", "tenantName": "ChirpStack",
            "applicationId": "app-1", "applicationName": "Test application",
            "deviceProfileId": "cf2aec2f-03e1-4a60-a32c-0faeef5730d8", "deviceProfileName": "Test profile",
            "deviceName": "Test device", "devEui": "0101010101010101", "tags": {"key": "value"}},
        "devAddr": "00189440", "dr": 1, "fPort": 20, "fCnt": 7, "confirmed": false, "adr": true,
        "data": "FIAB",
        "rxInfo": [{"gatewayId": "0016c001f153a14c", "uplinkId": 4217106255, "rssi": -36, "snr": 10.5,
            "context": "E3OWOQ==", "metadata": {"region_name": "eu868"}}],
        "txInfo": {"frequency": 867100000, "modulation": {"lora": {"bandwidth": 125000,
            "spreadingFactor": 7, "codeRate": "CR_4_5"}}}
    }"#;

    #[test]
    fn chirpstack_uplink_event() {
        let up = cs()
            .parse_uplink(
                "application/app-1/device/0101010101010101/event/up",
                CHIRPSTACK_UP.as_bytes(),
            )
            .unwrap();
        assert_eq!(up.dev_eui, [1; 8]);
        assert_eq!(up.fport, Some(20));
        assert_eq!(up.payload, [0x14, 0x80, 0x01]);
        assert_eq!(up.f_cnt, 7);
    }

    #[test]
    fn chirpstack_topic_and_eui_must_agree() {
        let e = cs()
            .parse_uplink(
                "application/app-1/device/0202020202020202/event/up",
                CHIRPSTACK_UP.as_bytes(),
            )
            .unwrap_err();
        assert!(matches!(
            e,
            NsError::Field {
                field: "deviceInfo.devEui",
                ..
            }
        ));
        for t in [
            "application/app-2/device/0101010101010101/event/up",
            "application/app-1/device/0101010101010101/event/join",
            "application/app-1/device/a/b/event/up",
        ] {
            assert_eq!(
                cs().parse_uplink(t, CHIRPSTACK_UP.as_bytes()),
                Err(NsError::Topic(t.into()))
            );
        }
        let e = cs()
            .parse_uplink(
                "application/app-1/device/0101010101010101/event/up",
                b"{\"fPort\": \"x\"",
            )
            .unwrap_err();
        assert!(matches!(e, NsError::Json { .. }), "{e}");
    }

    #[test]
    fn chirpstack_downlink_command() {
        let p = cs().downlink(
            &[0x70, 0xb3, 0xd5, 0x7e, 0xd0, 0, 0x42, 1],
            None,
            20,
            &[0x14, 0x80],
        );
        let p = p.unwrap();
        assert_eq!(
            p.topic,
            "application/app-1/device/70b3d57ed0004201/command/down"
        );
        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(v["devEui"], "70b3d57ed0004201");
        assert_eq!(v["fPort"], 20);
        assert_eq!(v["data"], "FIA=");
        let back: DownlinkCommand = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(back.data, [0x14, 0x80]);
    }

    fn tts() -> NetworkServerKind {
        NetworkServerKind::Tts {
            application_id: "my-app".into(),
            tenant: "ttn".into(),
        }
    }

    /// An uplink message as The Things Stack v3 publishes it (its documentation's example,
    /// trimmed of metadata).
    const TTS_UP: &str = r#"{
        "end_device_ids": {"device_id": "dev1", "application_ids": {"application_id": "my-app"},
            "dev_eui": "0004A30B001C0530", "join_eui": "800000000000000C", "dev_addr": "00BCB929"},
        "correlation_ids": ["as:up:01..."],
        "received_at": "2020-02-12T15:15:45.787Z",
        "uplink_message": {"session_key_id": "AXA50...", "f_port": 21, "f_cnt": 42,
            "frm_payload": "FYA=", "rx_metadata": [{"gateway_ids": {"gateway_id": "gw"}, "rssi": -35}],
            "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}}}}
    }"#;

    #[test]
    fn tts_uplink_and_downlink() {
        let up = tts()
            .parse_uplink("v3/my-app@ttn/devices/dev1/up", TTS_UP.as_bytes())
            .unwrap();
        assert_eq!(up.dev_eui, [0x00, 0x04, 0xa3, 0x0b, 0x00, 0x1c, 0x05, 0x30]);
        assert_eq!(up.fport, Some(21));
        assert_eq!(up.payload, [0x15, 0x80]);
        assert_eq!(up.device_id.as_deref(), Some("dev1"));
        assert!(tts().filter_matches_topic("v3/my-app@ttn/devices/dev1/up"));
        assert!(tts()
            .parse_uplink("v3/my-app@ttn/devices/dev2/up", TTS_UP.as_bytes())
            .is_err());
        assert!(tts().downlink(&up.dev_eui, None, 21, &[1]).is_none());
        let p = tts()
            .downlink(&up.dev_eui, Some("dev1"), 21, &[1, 2])
            .unwrap();
        assert_eq!(p.topic, "v3/my-app@ttn/devices/dev1/down/push");
        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"downlinks":[{"f_port":21,"frm_payload":"AQI=","priority":"NORMAL"}]})
        );
    }

    impl NetworkServerKind {
        fn filter_matches_topic(&self, topic: &str) -> bool {
            let f = self.uplink_filter();
            let (a, b) = f.split_once('+').unwrap();
            topic.starts_with(a) && topic.ends_with(b)
        }
    }
}
