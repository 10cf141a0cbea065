//! The L3 shape (parent endpoint, mailbox, child endpoint). Not built yet:
//! the endpoint machines land in core later. `L3` is uninhabited until then,
//! so no seed can select this shape.

use chiplane_core::{CallableSpec, Handle, TaskArgs};

use crate::chipside::ChipSide;
use crate::sched::{Ctx, Ev};
use crate::world::OpResult;

#[derive(Debug)]
pub enum L3 {}

impl L3 {
    pub fn new(_cx: &mut Ctx) -> L3 {
        panic!("the L3 shape needs core's endpoint machines")
    }
    pub fn step(&mut self, _ev: Ev, _cx: &mut Ctx, _chip: &mut ChipSide) {
        match *self {}
    }
    pub fn pump(&mut self, _cx: &mut Ctx, _chip: &mut ChipSide) {
        match *self {}
    }
    pub fn take_resolved(&mut self) -> Vec<(u32, OpResult)> {
        match *self {}
    }
    pub fn submit_register(&mut self, _cx: &mut Ctx, _op: u32, _k: usize, _spec: &CallableSpec) {
        match *self {}
    }
    pub fn submit_unregister(&mut self, _cx: &mut Ctx, _op: u32, _h: Handle) {
        match *self {}
    }
    pub fn submit_run(&mut self, _cx: &mut Ctx, _op: u32, _h: Handle, _args: TaskArgs) {
        match *self {}
    }
    pub fn liveness(&self) -> Result<(), String> {
        match *self {}
    }
    pub fn accepted(&self, _op: u32) -> Option<Handle> {
        match *self {}
    }
    pub fn notify_acceptance(&mut self, _op: u32, _caller: u32) {
        match *self {}
    }
    pub fn child_dead(&self) -> bool {
        match *self {}
    }
}
